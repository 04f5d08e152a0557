"""Peer for src/executor/winrm/encryption.test.ts: pywinrm's own NTLM message encryption.

Reads JSON {flags, key, reply} from stdin (key hex, reply base64: a body our server side sealed).
As a WinRM client would, seals two SOAP messages with pywinrm's Encryption (ntlm-auth session
security) and opens the reply; prints JSON {requests: [base64, base64], reply: text}.
"""
import base64
import json
import sys

from ntlm_auth.session_security import SessionSecurity
from winrm.encryption import Encryption


class _Holder(object):
    pass


class _Response(object):
    def __init__(self, content):
        self.content = content


def main():
    given = json.load(sys.stdin)
    session = _Holder()
    session.auth = _Holder()
    session.auth.session_security = SessionSecurity(given['flags'], bytes.fromhex(given['key']), source='client')
    encryption = Encryption(session, 'ntlm')
    requests = []
    for soap in given['messages']:
        body = encryption._encrypt_message(soap.encode('utf-8'), 'localhost') + encryption.MIME_BOUNDARY + b'--\r\n'
        requests.append(base64.b64encode(body).decode())
    reply = encryption._decrypt_response(_Response(base64.b64decode(given['reply'])), 'localhost')
    json.dump({'requests': requests, 'reply': reply.decode('utf-8')}, sys.stdout)


if __name__ == '__main__':
    main()
