"""Peer for test/winrm-server.test.ts: pywinrm running commands against the WinRM stand-in.

Reads JSON {url, transport, user, password, encryption, commands: [[command, arg...]]} from stdin;
runs each with Session.run_cmd (open shell, command, receive until done, signal, delete shell) and
prints JSON [{status, stdout, stderr}] (outputs base64), or {error} when pywinrm raised.
"""
import base64
import json
import sys

import winrm


def main():
    given = json.load(sys.stdin)
    session = winrm.Session(given['url'], auth=(given['user'], given['password']), transport=given['transport'],
                            message_encryption=given['encryption'], read_timeout_sec=30, operation_timeout_sec=20)
    results = []
    try:
        for command in given['commands']:
            response = session.run_cmd(command[0], command[1:])
            results.append({'status': response.status_code,
                            'stdout': base64.b64encode(response.std_out).decode(),
                            'stderr': base64.b64encode(response.std_err).decode()})
    except Exception as error:  # reported to the test, which asserts on it
        json.dump({'error': '%s: %s' % (type(error).__name__, error)}, sys.stdout)
        return
    json.dump(results, sys.stdout)


if __name__ == '__main__':
    main()
