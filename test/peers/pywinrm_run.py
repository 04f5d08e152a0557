"""Peer for test/winrm-server.test.ts: pywinrm running commands against the WinRM stand-in.

Reads JSON {url, transport, user, password, encryption, commands: [[command, arg...]]} from stdin,
optionally with cert_validation ('validate' or 'ignore') and ca_trust_path for https;
runs each with Session.run_cmd (open shell, command, receive until done, signal, delete shell) and
prints JSON [{status, stdout, stderr}] (outputs base64), or {error} when pywinrm raised.
"""
import base64
import json
import os
import sys

import winrm


def main():
    given = json.load(sys.stdin)
    # pywinrm lets a CA bundle from the environment override server_cert_validation='ignore': trust only what is given.
    for name in ('REQUESTS_CA_BUNDLE', 'CURL_CA_BUNDLE'):
        os.environ.pop(name, None)
    session = winrm.Session(given['url'], auth=(given['user'], given['password']), transport=given['transport'],
                            message_encryption=given['encryption'], read_timeout_sec=30, operation_timeout_sec=20,
                            server_cert_validation=given.get('cert_validation', 'validate'), ca_trust_path=given.get('ca_trust_path'))
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
