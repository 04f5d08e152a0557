#!/usr/bin/env python3
"""web-http/http_request: one HTTP request from the target (python3 standard library only).

Parameters arrive as environment variables OC_PARAM_<NAME> and are used as data, never as code:
the URL must be http(s) (redirects too), header lines are split into name and value and checked
(a header name is a token, a value holds no line break), the body is sent as given. The response
body is printed (up to max_body_bytes) with any line starting "OC_OUTPUT" shown as "[OC_OUTPUT]",
so a response cannot set the step's outputs.
Exit codes: 0 status as expected, 1 unexpected status or no response, 2 invalid parameter.
"""
import os
import re
import ssl
import sys
import time
import urllib.error
import urllib.request

STEP = 'http_request'
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


def status_matcher(spec):
    """'2xx', '200', '200,204,3xx' -> predicate on a status code."""
    patterns = [p.strip().lower() for p in spec.split(',') if p.strip()]
    if not patterns or not all(re.fullmatch(r'[1-5](\d\d|xx)', p) for p in patterns):
        invalid(f"expected_status must be codes or classes such as 200, 2xx or 200,204 (got {spec!r})")
    return lambda code: any(str(code) == p or (p.endswith('xx') and str(code)[0] == p[0]) for p in patterns)


def build_request(method, url, headers_text, body, content_type, token):
    if method not in METHODS:
        invalid(f'method must be one of {", ".join(METHODS)} (got {method!r})')
    if not re.match(r'^https?://[^\s/?#]+', url):
        invalid(f'url must start with http:// or https:// and name a host (got {url!r})')
    headers = {}
    for line in headers_text.splitlines():
        if not line.strip():
            continue
        name, sep, value = line.partition(':')
        if not sep or not TOKEN.match(name.strip()):
            invalid(f'headers: each line must be "Name: value" (got {line!r})')
        headers[name.strip()] = value.strip()
    if content_type:
        headers['Content-Type'] = content_type
    if token:
        headers['Authorization'] = f'Bearer {token}'
    data = body.encode('utf-8') if body or method in ('POST', 'PUT', 'PATCH') else None
    return urllib.request.Request(url, data=data, headers=headers, method=method)


class Redirects(urllib.request.HTTPRedirectHandler):
    """Follows redirects only when asked, and only to http(s) URLs."""

    def __init__(self, follow):
        self.follow = follow

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        if not self.follow or not re.match(r'^https?://', newurl):
            return None
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def send(request, timeout, follow, insecure, keep):
    """(status, reason, headers, first `keep` body bytes, body size, final URL, ms); URLError/OSError when no response."""
    context = ssl._create_unverified_context() if insecure else ssl.create_default_context()
    opener = urllib.request.build_opener(Redirects(follow), urllib.request.HTTPSHandler(context=context))
    started = time.monotonic()
    try:
        response = opener.open(request, timeout=timeout)
    except urllib.error.HTTPError as error:  # a response all the same: 4xx, 5xx, unfollowed 3xx
        response = error
    with response:
        kept, size = bytearray(), 0
        for chunk in iter(lambda: response.read(65536), b''):
            if len(kept) < keep:
                kept += chunk[: keep - len(kept)]
            size += len(chunk)
        elapsed = int((time.monotonic() - started) * 1000)
        return response.getcode(), response.reason, response.headers, bytes(kept), size, response.geturl(), elapsed


def print_body(body, size):
    for line in body.decode('utf-8', errors='replace').splitlines():
        print('[OC_OUTPUT]' + line[len('OC_OUTPUT'):] if line.startswith('OC_OUTPUT') else line)
    if size > len(body):
        print(f'[{size - len(body)} more bytes not shown]')


def main():
    method = param('method', 'GET').strip().upper() or 'GET'
    url = param('url').strip()
    accept = status_matcher(param('expected_status', '2xx') or '2xx')
    timeout = integer('timeout_seconds', 30, 1, 3600)
    limit = integer('max_body_bytes', 65536, 0, 10485760)
    request = build_request(method, url, param('headers'), param('body'), param('content_type').strip(), param('bearer_token'))
    try:
        status, reason, headers, body, size, final_url, elapsed = send(request, timeout, flag('follow_redirects', True), flag('insecure', False), limit)
    except (urllib.error.URLError, OSError) as error:
        output('status_code', 0)
        output('ok', 'false')
        print(f'{STEP}: no response from {url}: {getattr(error, "reason", error)}', file=sys.stderr)
        return 1
    print_body(body, size)
    ok = accept(status)
    output('status_code', status)
    output('reason', reason)
    output('response_time_ms', elapsed)
    output('content_type', headers.get('Content-Type', ''))
    output('body_bytes', size)
    output('final_url', final_url)
    output('ok', 'true' if ok else 'false')
    if not ok:
        print(f'{STEP}: {method} {url} answered {status} {reason}', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
