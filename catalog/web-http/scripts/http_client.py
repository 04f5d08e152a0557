#!/usr/bin/env python3
"""web-http: HTTP from the target with python3's standard library, one subcommand per step.

A script step uploads one file, so the three steps share this one and name their part in the
manifest's `args` (argv[1]):

    request    http_request   one request; the response body is printed (up to max_body_bytes)
    api_test   api_test       a JSON API call checked against status and JSON-path assertions
    download   download_file  a URL saved to a file on the target, optionally SHA-256 checked

Parameters arrive as environment variables OC_PARAM_<NAME> and are used as data, never as code:
URLs must be http(s) (redirects too), header lines are split into name and value and checked (a
header name is a token, a value holds no line break), a body is sent as given, a destination must
be an absolute path. Response text is printed with any line starting "OC_OUTPUT" shown as
"[OC_OUTPUT]", so a response cannot set the step's outputs. Messages start with the step's name.

api_test assertions, one per line:

    <path> <operator> [value]      e.g.  $.data.items[0].name == "web-1"

path: $ then .key, ['key'] or [index] (negative counts from the end); operators: == != < <= > >=
(value is JSON: 3, true, null, "text"; anything else is taken as a string), contains (substring,
array element or object key), matches (Python regular expression, searched), exists, absent,
length (of an array, object or string). Extractions, one per line "name = <path>", become outputs
(strings as they are, anything else as JSON), printed before the step's own outputs so these win
a clash.

download writes beside the destination under a temporary name, checks it, gives it its mode and
then renames it into place, so the destination never holds a partial or unverified file.

Exit codes: 0 success (status as expected, every assertion held, file downloaded), 1 the check or
download failed (no response, unexpected status, failed assertion, checksum mismatch, destination
exists without overwrite, directory missing), 2 invalid parameter or unknown subcommand.
"""
import hashlib
import json
import os
import re
import ssl
import sys
import tempfile
import time
import urllib.error
import urllib.request

STEP = 'http_client'  # the running step's name, set by main() from the subcommand
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


def check_url(url):
    if not re.match(r'^https?://[^\s/?#]+', url):
        invalid(f'url must start with http:// or https:// and name a host (got {url!r})')


def build_request(method, url, headers_text, body, content_type, token):
    if method not in METHODS:
        invalid(f'method must be one of {", ".join(METHODS)} (got {method!r})')
    check_url(url)
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


def opener(follow, insecure):
    context = ssl._create_unverified_context() if insecure else ssl.create_default_context()
    return urllib.request.build_opener(Redirects(follow), urllib.request.HTTPSHandler(context=context))


def open_url(client, request, timeout):
    """The response, or the HTTPError that stands for one (4xx, 5xx, unfollowed 3xx); URLError/OSError when none came."""
    try:
        return client.open(request, timeout=timeout)
    except urllib.error.HTTPError as error:
        return error


def send(request, timeout, follow, insecure, keep):
    """(status, reason, headers, first `keep` body bytes, body size, final URL, ms); URLError/OSError when no response."""
    client = opener(follow, insecure)
    started = time.monotonic()
    with open_url(client, request, timeout) as response:
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


def no_response(url, error):
    output('status_code', 0)
    output('ok', 'false')
    print(f'{STEP}: no response from {url}: {getattr(error, "reason", error)}', file=sys.stderr)
    return 1


# request ------------------------------------------------------------------------------------

def http_request():
    method = param('method', 'GET').strip().upper() or 'GET'
    url = param('url').strip()
    accept = status_matcher(param('expected_status', '2xx') or '2xx')
    timeout = integer('timeout_seconds', 30, 1, 3600)
    limit = integer('max_body_bytes', 65536, 0, 10485760)
    request = build_request(method, url, param('headers'), param('body'), param('content_type').strip(), param('bearer_token'))
    try:
        status, reason, headers, body, size, final_url, elapsed = send(request, timeout, flag('follow_redirects', True), flag('insecure', False), limit)
    except (urllib.error.URLError, OSError) as error:
        return no_response(url, error)
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


# api_test -----------------------------------------------------------------------------------

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


def api_test():
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
        return no_response(url, error)
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


# download -----------------------------------------------------------------------------------

def fetch_to_temporary(url, destination, timeout, follow, insecure, token):
    """Streams the body to a temporary file beside `destination`: (status, path, bytes, sha256, final URL)."""
    response = open_url(opener(follow, insecure), build_request('GET', url, '', '', '', token), timeout)
    if isinstance(response, urllib.error.HTTPError):
        response.close()
        return response.getcode(), None, 0, '', url
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


def download_file():
    url = param('url').strip()
    destination = param('destination')
    expected_sha = param('sha256').strip().lower()
    mode = param('mode').strip()
    overwrite = flag('overwrite', False)
    timeout = integer('timeout_seconds', 300, 1, 86400)
    check_url(url)
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
        status, temporary, size, sha, final_url = fetch_to_temporary(url, destination, timeout, flag('follow_redirects', True), flag('insecure', False), param('bearer_token'))
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


# subcommand -> (step name for messages, function)
COMMANDS = {'request': ('http_request', http_request), 'api_test': ('api_test', api_test), 'download': ('download_file', download_file)}


def main(argv):
    global STEP
    if len(argv) != 2 or argv[1] not in COMMANDS:
        print(f'{STEP}: usage: http_client.py {"|".join(COMMANDS)} (got {" ".join(argv[1:]) or "no subcommand"})', file=sys.stderr)
        return 2
    STEP, run = COMMANDS[argv[1]]
    return run()


if __name__ == '__main__':
    sys.exit(main(sys.argv))
