#!/usr/bin/env python3
"""web-http/api_test: calls a JSON API from the target and checks the status and JSON-path assertions.

Parameters arrive as environment variables OC_PARAM_<NAME> and are used as data, never as code
(URL, headers and body are handled as in http_request). Assertions, one per line:

    <path> <operator> [value]      e.g.  $.data.items[0].name == "web-1"

path: $ then .key, ['key'] or [index] (negative counts from the end); operators: == != < <= > >=
(value is JSON: 3, true, null, "text"; anything else is taken as a string), contains (substring,
array element or object key), matches (Python regular expression, searched), exists, absent,
length (of an array, object or string). Extractions, one per line "name = <path>", become outputs
(strings as they are, anything else as JSON), printed before the step's own outputs so these win
a clash.
Exit codes: 0 status as expected and every assertion held, 1 otherwise, 2 invalid parameter.
"""
import json
import os
import re
import ssl
import sys
import time
import urllib.error
import urllib.request

STEP = 'api_test'
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


MAX_JSON_BYTES = 16 * 1024 * 1024
MISSING = object()
SEGMENT = re.compile(r"""\.([A-Za-z_$][\w$-]*)|\[(-?\d+)\]|\['((?:[^'\\]|\\.)*)'\]|\["((?:[^"\\]|\\.)*)"\]""")
OPERATORS = ('==', '!=', '<=', '>=', '<', '>', 'contains', 'matches', 'exists', 'absent', 'length')
OUTPUT_NAME = re.compile(r'^[A-Za-z_][A-Za-z0-9_]{0,63}$')


def parse_path(text):
    """'$.a[0]['b c'] rest' -> (['a', 0, 'b c'], ' rest'); ValueError when it is no path."""
    if not text.startswith('$'):
        raise ValueError('a path starts with $')
    parts, pos = [], 1
    while pos < len(text) and not text[pos].isspace():
        match = SEGMENT.match(text, pos)
        if not match:
            raise ValueError(f'cannot read the path at {text[pos:]!r}')
        key, index, single, double = match.groups()
        if index is not None:
            parts.append(int(index))
        else:
            quoted = single if single is not None else double
            parts.append(key if key is not None else re.sub(r'\\(.)', r'\1', quoted))
        pos = match.end()
    return parts, text[pos:]


def resolve(document, parts):
    value = document
    for part in parts:
        if isinstance(part, int) and isinstance(value, list) and -len(value) <= part < len(value):
            value = value[part]
        elif isinstance(part, str) and isinstance(value, dict) and part in value:
            value = value[part]
        else:
            return MISSING
    return value


def expected_value(text):
    try:
        return json.loads(text)
    except ValueError:
        return text


def is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def same(a, b):
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    return a == b


def check(actual, operator, text):
    """None when the assertion holds, else why not."""
    if operator == 'exists':
        return None if actual is not MISSING else 'not found'
    if operator == 'absent':
        return None if actual is MISSING else f'found {json.dumps(actual)}'
    if actual is MISSING:
        return 'not found'
    expected = expected_value(text)
    if operator in ('==', '!='):
        return None if same(actual, expected) == (operator == '==') else f'actual {json.dumps(actual)}'
    if operator in ('<', '<=', '>', '>='):
        if not (is_number(actual) and is_number(expected)):
            return f'actual {json.dumps(actual)}: both sides must be numbers'
        held = {'<': actual < expected, '<=': actual <= expected, '>': actual > expected, '>=': actual >= expected}[operator]
        return None if held else f'actual {json.dumps(actual)}'
    if operator == 'contains':
        if isinstance(actual, str):
            held = str(expected) in actual
        elif isinstance(actual, list):
            held = any(same(item, expected) for item in actual)
        elif isinstance(actual, dict):
            held = str(expected) in actual
        else:
            return f'actual {json.dumps(actual)} is not a string, array or object'
        return None if held else f'actual {json.dumps(actual)}'
    if operator == 'matches':
        subject = actual if isinstance(actual, str) else json.dumps(actual)
        return None if re.search(text, subject) else f'actual {json.dumps(actual)}'
    # length
    if not isinstance(actual, (list, dict, str)):
        return f'actual {json.dumps(actual)} has no length'
    return None if is_number(expected) and len(actual) == expected else f'length {len(actual)}'


def parse_assertions(text):
    assertions = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith('#'):
            continue
        try:
            parts, rest = parse_path(line)
        except ValueError as error:
            invalid(f'assertion {line!r}: {error}')
        operator, _, value = rest.strip().partition(' ')
        if operator not in OPERATORS:
            invalid(f'assertion {line!r}: the operator must be one of {" ".join(OPERATORS)}')
        if operator in ('matches',):
            try:
                re.compile(value.strip())
            except re.error as error:
                invalid(f'assertion {line!r}: {error}')
        assertions.append((line, parts, operator, value.strip()))
    return assertions


def parse_extractions(text):
    extractions = []
    for line in text.splitlines():
        if not line.strip():
            continue
        name, sep, path = line.partition('=')
        try:
            parts, rest = parse_path(path.strip())
        except ValueError as error:
            invalid(f'extract {line!r}: {error}')
        if not sep or not OUTPUT_NAME.match(name.strip()) or rest.strip():
            invalid(f'extract {line!r}: each line must be "name = $.path" with name [A-Za-z_][A-Za-z0-9_]*')
        extractions.append((name.strip(), parts))
    return extractions


def main():
    method = param('method', 'GET').strip().upper() or 'GET'
    url = param('url').strip()
    accept = status_matcher(param('expected_status', '2xx') or '2xx')
    timeout = integer('timeout_seconds', 30, 1, 3600)
    assertions = parse_assertions(param('assertions'))
    extractions = parse_extractions(param('extract'))
    headers = 'Accept: application/json\n' + param('headers')
    request = build_request(method, url, headers, param('body'), param('content_type').strip(), param('bearer_token'))
    try:
        status, reason, _, body, size, _, elapsed = send(request, timeout, flag('follow_redirects', True), flag('insecure', False), MAX_JSON_BYTES)
    except (urllib.error.URLError, OSError) as error:
        output('status_code', 0)
        output('ok', 'false')
        print(f'{STEP}: no response from {url}: {getattr(error, "reason", error)}', file=sys.stderr)
        return 1
    failures = 0 if accept(status) else 1
    print(f'{"PASS" if not failures else "FAIL"} status {status} {reason}')
    document = MISSING
    if assertions or extractions:
        try:
            if size > len(body):
                raise ValueError(f'the body is larger than {MAX_JSON_BYTES} bytes')
            document = json.loads(body.decode('utf-8'))
        except ValueError as error:
            print(f'FAIL the body is not JSON: {error}')
            failures += 1
    passed = 0
    for line, parts, operator, value in assertions if document is not MISSING else []:
        why = check(resolve(document, parts), operator, value)
        print(f'PASS {line}' if why is None else f'FAIL {line} ({why})')
        passed += why is None
    for name, parts in extractions if document is not MISSING else []:
        value = resolve(document, parts)
        if value is MISSING:
            print(f'FAIL extract {name}: path not found')
            failures += 1
        else:
            output(name, value if isinstance(value, str) else json.dumps(value, separators=(',', ':')))
    failures += len(assertions) - passed
    if failures:
        print('response body:')
        print_body(body[:4096], size)
    output('status_code', status)
    output('response_time_ms', elapsed)
    output('assertions_total', len(assertions))
    output('assertions_passed', passed)
    output('assertions_failed', len(assertions) - passed)
    output('ok', 'false' if failures else 'true')
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
