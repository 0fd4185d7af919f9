"""A raw XMPP client for the end-to-end tests: exact bytes in, parsed
elements out, for what a well-behaved library never sends (forged from,
PLAIN without TLS, a second <auth/>)."""
import base64
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from fgtest import Peer  # noqa: E402

NS_SASL = "urn:ietf:params:xml:ns:xmpp-sasl"
NS_BIND = "urn:ietf:params:xml:ns:xmpp-bind"
NS_CLIENT = "jabber:client"


class Client(Peer):
    def __init__(self, host="127.0.0.1", source=None):
        super().__init__(port=5222, host=host, source=source)

    def begin(self, tls=True, domain="contoso.test"):
        """Opens the stream (and secures it); returns the features."""
        self.open(to=domain, ns=NS_CLIENT)
        f = self.features()
        if tls:
            self.starttls()
            self.open(to=domain, ns=NS_CLIENT)
            f = self.features()
        return f

    def begin_with(self, ctx, session=None, domain="contoso.test"):
        """STARTTLS with the caller's context, offering session (a
        ticket's, or None); returns the features after TLS."""
        self.open(to=domain, ns=NS_CLIENT)
        self.features()
        self.send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
        assert self.next_element().tag.endswith("proceed")
        self.sock.settimeout(10)
        self.sock = ctx.wrap_socket(self.sock, server_hostname=domain, session=session)
        self.reset_parser()
        self.open(to=domain, ns=NS_CLIENT)
        return self.features()

    @staticmethod
    def mechanisms(features):
        m = features.find(f"{{{NS_SASL}}}mechanisms")
        return [] if m is None else [x.text for x in m]

    def plain(self, user, password, authzid=""):
        """Sends PLAIN; returns the answer element's local name and the
        element ('success' or 'failure')."""
        raw = f"{authzid}\0{user}\0{password}".encode()
        self.send(f"<auth xmlns='{NS_SASL}' mechanism='PLAIN'>"
                  f"{base64.b64encode(raw).decode()}</auth>")
        el = self.next_element()
        assert el is not None and el != "close", "no answer to <auth/>"
        return el.tag.split("}")[1], el

    @staticmethod
    def failure_condition(el):
        return [c.tag.split("}")[1] for c in el if not c.tag.endswith("}text")][0]

    def authenticate(self, user, password, domain="contoso.test"):
        """TLS, PLAIN (which must succeed), restart; returns the features."""
        self.begin(domain=domain)
        kind, el = self.plain(user, password)
        assert kind == "success", self.failure_condition(el)
        self.reset_parser()
        self.open(to=domain, ns=NS_CLIENT)
        return self.features()

    def login(self, user, password, resource="raw", domain="contoso.test"):
        """TLS, PLAIN, restart, bind; returns the bound full JID."""
        f = self.authenticate(user, password, domain)
        assert f.find(f"{{{NS_BIND}}}bind") is not None
        self.send(f"<iq type='set' id='b1'><bind xmlns='{NS_BIND}'>"
                  f"<resource>{resource}</resource></bind></iq>")
        iq = self.next_element()
        assert iq is not None and iq != "close" and iq.get("type") == "result", iq
        return iq.find(f"{{{NS_BIND}}}bind/{{{NS_BIND}}}jid").text
