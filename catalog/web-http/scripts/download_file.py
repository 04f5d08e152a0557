#!/usr/bin/env python3
"""web-http/download_file: downloads a URL onto the target, optionally checking its SHA-256.

Parameters arrive as environment variables OC_PARAM_<NAME> and are used as data, never as code:
the URL must be http(s) (redirects too), the destination an absolute path. The file is written
beside the destination under a temporary name, checked, given its mode and then renamed into
place, so the destination never holds a partial or unverified file.
Exit codes: 0 downloaded, 1 failed (no response, non-2xx status, checksum mismatch, destination
exists without overwrite, directory missing), 2 invalid parameter.
"""
import hashlib
import os
import re
import ssl
import sys
import tempfile
import time
import urllib.error
import urllib.request

STEP = 'download_file'
METHODS = ('GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS')
TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


def param(name, default=''):
    return os.environ.get('OC_PARAM_' + name.upper(), default)


def invalid(message):
    print(f'{STEP}: {message}', file=sys.stderr)
    sys.exit(2)


def flag(name, default):
    value = param(name).strip().lower()
    return default if value == '' else value in ('true', '1', 'yes')


def integer(name, default, low, high):
    text = param(name, str(default)).strip() or str(default)
    if not re.fullmatch(r'\d+', text) or not low <= int(text) <= high:
        invalid(f'{name} must be an integer from {low} to {high} (got {text!r})')
    return int(text)


def output(name, value):
    print(f'OC_OUTPUT {name}=' + ' '.join(str(value).splitlines()))


class Redirects(urllib.request.HTTPRedirectHandler):
    """Follows redirects only when asked, and only to http(s) URLs."""

    def __init__(self, follow):
        self.follow = follow

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        if not self.follow or not re.match(r'^https?://', newurl):
            return None
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def download(url, destination, timeout, follow, insecure, token):
    """Streams the body to a temporary file beside `destination`: (status, path, bytes, sha256, final URL)."""
    headers = {'Authorization': f'Bearer {token}'} if token else {}
    context = ssl._create_unverified_context() if insecure else ssl.create_default_context()
    opener = urllib.request.build_opener(Redirects(follow), urllib.request.HTTPSHandler(context=context))
    try:
        response = opener.open(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as error:
        error.close()
        return error.getcode(), None, 0, '', url
    digest, size = hashlib.sha256(), 0
    handle, temporary = tempfile.mkstemp(prefix='.oc-download-', dir=os.path.dirname(destination))
    try:
        with response, os.fdopen(handle, 'wb') as file:
            for chunk in iter(lambda: response.read(65536), b''):
                file.write(chunk)
                digest.update(chunk)
                size += len(chunk)
        return response.getcode(), temporary, size, digest.hexdigest(), response.geturl()
    except BaseException:
        os.unlink(temporary)
        raise


def current_umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def main():
    url = param('url').strip()
    destination = param('destination')
    expected_sha = param('sha256').strip().lower()
    mode = param('mode').strip()
    overwrite = flag('overwrite', False)
    timeout = integer('timeout_seconds', 300, 1, 86400)
    if not re.match(r'^https?://[^\s/?#]+', url):
        invalid(f'url must start with http:// or https:// and name a host (got {url!r})')
    if not os.path.isabs(destination) or destination.endswith('/'):
        invalid(f'destination must be an absolute file path (got {destination!r})')
    if expected_sha and not re.fullmatch(r'[0-9a-f]{64}', expected_sha):
        invalid('sha256 must be 64 hexadecimal digits')
    if mode and not re.fullmatch(r'0?[0-7]{3}', mode):
        invalid(f'mode must be octal such as 0644 (got {mode!r})')
    if not os.path.isdir(os.path.dirname(destination)):
        print(f'{STEP}: the directory {os.path.dirname(destination)} does not exist', file=sys.stderr)
        return 1
    if os.path.isdir(destination):
        print(f'{STEP}: {destination} is a directory', file=sys.stderr)
        return 1
    if os.path.lexists(destination) and not overwrite:
        print(f'{STEP}: {destination} exists (set overwrite to replace it)', file=sys.stderr)
        return 1
    started = time.monotonic()
    try:
        status, temporary, size, sha, final_url = download(url, destination, timeout, flag('follow_redirects', True), flag('insecure', False), param('bearer_token'))
    except (urllib.error.URLError, OSError) as error:
        output('status_code', 0)
        print(f'{STEP}: download of {url} failed: {getattr(error, "reason", error)}', file=sys.stderr)
        return 1
    output('status_code', status)
    if temporary is None:
        print(f'{STEP}: {url} answered {status}', file=sys.stderr)
        return 1
    if expected_sha and sha != expected_sha:
        os.unlink(temporary)
        output('sha256', sha)
        print(f'{STEP}: SHA-256 mismatch: got {sha}, expected {expected_sha}; nothing was written', file=sys.stderr)
        return 1
    try:
        os.chmod(temporary, int(mode, 8) if mode else 0o666 & ~current_umask())
        os.replace(temporary, destination)
    except OSError as error:
        os.unlink(temporary)
        print(f'{STEP}: cannot write {destination}: {error}', file=sys.stderr)
        return 1
    print(f'downloaded {size} bytes from {final_url} to {destination} in {int((time.monotonic() - started) * 1000)} ms')
    output('path', destination)
    output('bytes', size)
    output('sha256', sha)
    output('verified', 'true' if expected_sha else 'false')
    return 0


if __name__ == '__main__':
    sys.exit(main())
