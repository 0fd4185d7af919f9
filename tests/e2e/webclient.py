"""A small HTTP client for the admin API and the control panel, on urllib
only: no redirects followed (the tests look at 303s), cookies kept per
client, every answer returned whatever its status."""
import functools
import html
import http.client
import http.cookiejar
import json
import re
import urllib.error
import urllib.parse
import urllib.request


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


class _FromSource(urllib.request.HTTPHandler):
    """Plain HTTP connections made from one local address."""

    def __init__(self, source):
        super().__init__()
        self.source = source

    def http_open(self, req):
        return self.do_open(functools.partial(http.client.HTTPConnection,
                                              source_address=(self.source, 0)), req)


class Answer:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    @property
    def text(self):
        return self.body.decode("utf-8", "replace")

    def json(self):
        return json.loads(self.body)

    def csrf(self):
        m = re.search(r'name="csrf" value="([0-9a-f]+)"', self.text)
        return m.group(1) if m else None


class Client:
    def __init__(self, base, token=None, context=None, source=None):
        """source: the local address to connect from (plain HTTP only)."""
        self.base = base.rstrip("/")
        self.token = token
        self.jar = http.cookiejar.CookieJar()
        handlers = [_NoRedirect, urllib.request.HTTPCookieProcessor(self.jar)]
        if source is not None:
            handlers.append(_FromSource(source))
        if context is not None:
            handlers.append(urllib.request.HTTPSHandler(context=context))
        self.opener = urllib.request.build_opener(*handlers)

    def request(self, method, path, body=None, headers=None, form=None):
        h = dict(headers or {})
        data = None
        if form is not None:
            data = urllib.parse.urlencode(form).encode()
            h["Content-Type"] = "application/x-www-form-urlencoded"
        elif isinstance(body, (dict, list)):
            data = json.dumps(body).encode()
            h["Content-Type"] = "application/json"
        elif isinstance(body, str):
            data = body.encode()
        elif isinstance(body, bytes):
            data = body
        if self.token:
            h["Authorization"] = f"Bearer {self.token}"
        req = urllib.request.Request(self.base + path, data=data, method=method, headers=h)
        try:
            with self.opener.open(req, timeout=30) as r:
                return Answer(r.status, r.headers, r.read())
        except urllib.error.HTTPError as e:
            return Answer(e.code, e.headers, e.read())

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, body, **kw)

    def signin(self, name, password):
        page = self.get("/signin")
        r = self.post("/signin", form={"csrf": page.csrf(), "name": name, "password": password})
        return r

    def cookie(self, name):
        for c in self.jar:
            if c.name == name:
                return c.value
        return None


def unescape(s):
    return html.unescape(s)
