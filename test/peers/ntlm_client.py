"""Peer for src/executor/winrm/ntlm.test.ts: ntlm-auth (pywinrm's NTLM) as the client.

Reads JSON {user, password, domain, challenge (base64), message (text)} from stdin; prints JSON
{negotiate, authenticate, wrapped} (base64): its NEGOTIATE, its AUTHENTICATE answering the
challenge, and `message` wrapped (signature then sealed bytes) with its session security.
Needs MD4: run with an OPENSSL_CONF that activates OpenSSL's legacy provider.
"""
import base64
import json
import sys

from ntlm_auth.ntlm import NtlmContext


def main():
    given = json.load(sys.stdin)
    context = NtlmContext(given['user'], given['password'], given['domain'], 'PEER', ntlm_compatibility=3)
    negotiate = context.step()
    authenticate = context.step(base64.b64decode(given['challenge']))
    wrapped = context.wrap(given['message'].encode('utf-8'))
    b64 = lambda data: base64.b64encode(data).decode()
    json.dump({'negotiate': b64(negotiate), 'authenticate': b64(authenticate), 'wrapped': b64(wrapped)}, sys.stdout)


if __name__ == '__main__':
    main()
