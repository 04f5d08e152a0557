"""Peer for test/winrm-server.test.ts: pywinrm sending stdin to a command (WS-Management Send).

pywinrm 0.3 (Debian 12) has no send_command_input, so the Send envelope is built the way later
pywinrm releases build it: its own SOAP header, a rsp:Send body with stdin streams, the last one
marked End. Reads JSON {url, transport, user, password, encryption, command, chunks: [base64]} from
stdin; prints JSON {status, stdout, stderr} (outputs base64), or {error} when pywinrm raised.
"""
import base64
import json
import sys

import winrm
import xmltodict

SEND = 'http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Send'
CMD = 'http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd'


def send_input(protocol, shell_id, command_id, data, end):
    req = {'env:Envelope': protocol._get_soap_header(resource_uri=CMD, action=SEND, shell_id=shell_id)}
    stream = {'@Name': 'stdin', '@CommandId': command_id, '#text': base64.b64encode(data).decode()}
    if end:
        stream['@End'] = 'true'
    req['env:Envelope'].setdefault('env:Body', {})['rsp:Send'] = {'rsp:Stream': stream}
    protocol.send_message(xmltodict.unparse(req))


def main():
    given = json.load(sys.stdin)
    session = winrm.Session(given['url'], auth=(given['user'], given['password']), transport=given['transport'],
                            message_encryption=given['encryption'], read_timeout_sec=30, operation_timeout_sec=20)
    protocol = session.protocol
    try:
        shell_id = protocol.open_shell()
        command_id = protocol.run_command(shell_id, given['command'])
        chunks = [base64.b64decode(c) for c in given['chunks']]
        for i, chunk in enumerate(chunks):
            send_input(protocol, shell_id, command_id, chunk, i == len(chunks) - 1)
        stdout, stderr, status = protocol.get_command_output(shell_id, command_id)
        protocol.cleanup_command(shell_id, command_id)
        protocol.close_shell(shell_id)
    except Exception as error:  # reported to the test, which asserts on it
        json.dump({'error': '%s: %s' % (type(error).__name__, error)}, sys.stdout)
        return
    json.dump({'status': status, 'stdout': base64.b64encode(stdout).decode(), 'stderr': base64.b64encode(stderr).decode()}, sys.stdout)


if __name__ == '__main__':
    main()
