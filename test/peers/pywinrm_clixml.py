"""Peer for src/executor/winrm/clixml.test.ts: pywinrm's own reading of PowerShell CLIXML stderr.

Reads a JSON list of stderr texts from stdin; prints the list as pywinrm's Session cleans them.
"""
import json
import sys

import winrm


def main():
    session = winrm.Session('http://127.0.0.1:1/wsman', auth=('unused', 'unused'))
    json.dump([session._clean_error_msg(text) for text in json.load(sys.stdin)], sys.stdout)


if __name__ == '__main__':
    main()
