"""Certificates made at test time (python3-cryptography): no private key is
ever committed. A CA issues server and client certificates; each is written
as PEM files into a directory the test owns.

    ca = tlscerts.CA("loom test CA")
    cert, key = ca.issue("localhost", names=["localhost"], ips=["127.0.0.1"]).write(d, "srv")
    ocsp = ca.ocsp_response(leaf)          # DER bytes, for stapling
"""
import datetime
import ipaddress
import os

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID

DAY = datetime.timedelta(days=1)


def now():
    return datetime.datetime.now(datetime.timezone.utc)


def new_key(kind="ec"):
    if kind == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return ec.generate_private_key(ec.SECP256R1())


def _name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def pem_key(k):
    return k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                           serialization.NoEncryption())


class Cert:
    """A certificate, its key and the chain above it (intermediates only)."""

    def __init__(self, cert, key, chain=()):
        self.cert, self.key, self.chain = cert, key, list(chain)

    @property
    def pem(self):
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def fingerprint(self):
        return self.cert.fingerprint(hashes.SHA256()).hex()

    def write(self, d, stem, chain=True, key_mode=0o600):
        """Writes STEM.pem (leaf, then the chain) and STEM.key; returns both paths."""
        cp, kp = os.path.join(d, stem + ".pem"), os.path.join(d, stem + ".key")
        with open(cp + ".tmp", "wb") as f:
            f.write(self.pem)
            if chain:
                for c in self.chain:
                    f.write(c.public_bytes(serialization.Encoding.PEM))
        os.rename(cp + ".tmp", cp)
        fd = os.open(kp + ".tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, key_mode)
        with os.fdopen(fd, "wb") as f:
            f.write(pem_key(self.key))
        os.chmod(kp + ".tmp", key_mode)
        os.rename(kp + ".tmp", kp)
        return cp, kp


class CA(Cert):
    """A certificate authority (a root, or an intermediate under `parent`)."""

    def __init__(self, cn, parent=None, key_kind="ec"):
        k = new_key(key_kind)
        issuer = parent or None
        b = (x509.CertificateBuilder().subject_name(_name(cn))
             .issuer_name(issuer.cert.subject if issuer else _name(cn))
             .public_key(k.public_key()).serial_number(x509.random_serial_number())
             .not_valid_before(now() - DAY).not_valid_after(now() + 365 * DAY)
             .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
             .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True,
                                          crl_sign=True, content_commitment=False,
                                          key_encipherment=False, data_encipherment=False,
                                          key_agreement=False, encipher_only=False,
                                          decipher_only=False), critical=True))
        c = b.sign(issuer.key if issuer else k, hashes.SHA256())
        super().__init__(c, k, ([issuer.cert] + issuer.chain) if parent and parent.chain
                         else ([issuer.cert] if parent else []))
        self.is_root = parent is None

    def write_ca(self, d, stem):
        p = os.path.join(d, stem + ".pem")
        with open(p, "wb") as f:
            f.write(self.pem)
        return p

    def issue(self, cn, names=(), ips=(), start=None, end=None, days=30, client=False,
              ocsp_url=None, key_kind="ec"):
        k = new_key(key_kind)
        b = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(self.cert.subject)
             .public_key(k.public_key()).serial_number(x509.random_serial_number())
             .not_valid_before(start or now() - DAY).not_valid_after(end or now() + days * DAY)
             .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
             .add_extension(x509.ExtendedKeyUsage(
                 [ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH]),
                 critical=False))
        sans = [x509.DNSName(n) for n in names] + [x509.IPAddress(ipaddress.ip_address(i))
                                                   for i in ips]
        if sans:
            b = b.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        if ocsp_url:
            b = b.add_extension(x509.AuthorityInformationAccess([x509.AccessDescription(
                AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(ocsp_url))]),
                critical=False)
        c = b.sign(self.key, hashes.SHA256())
        chain = [] if self.is_root else [self.cert] + self.chain[:-1]
        return Cert(c, k, chain)

    def ocsp_response(self, leaf, good=True, next_update_days=1):
        """A DER OCSP response about `leaf`, signed by this CA."""
        b = ocsp.OCSPResponseBuilder().add_response(
            cert=leaf.cert, issuer=self.cert, algorithm=hashes.SHA1(),
            cert_status=ocsp.OCSPCertStatus.GOOD if good else ocsp.OCSPCertStatus.REVOKED,
            this_update=now() - datetime.timedelta(minutes=5),
            next_update=now() + next_update_days * DAY,
            revocation_time=None if good else now() - DAY,
            revocation_reason=None).responder_id(ocsp.OCSPResponderEncoding.HASH, self.cert)
        return b.sign(self.key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def self_signed(cn="localhost", names=("localhost",), ips=("127.0.0.1",), days=30):
    k = new_key()
    sans = [x509.DNSName(n) for n in names] + [x509.IPAddress(ipaddress.ip_address(i))
                                               for i in ips]
    c = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(_name(cn))
         .public_key(k.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(now() - DAY).not_valid_after(now() + days * DAY)
         .add_extension(x509.SubjectAlternativeName(sans), critical=False)
         .sign(k, hashes.SHA256()))
    return Cert(c, k)


def make(directory, cn="localhost"):
    """A CA and a server certificate for localhost, 127.0.0.1 and ::1 that it
    issued, written to DIRECTORY: returns the paths (ca.pem, cert.pem, key.pem)."""
    ca = CA("loom test CA")
    cert, key = ca.issue(cn, names=["localhost"], ips=["127.0.0.1", "::1"]).write(directory, "cert")
    os.rename(key, os.path.join(directory, "key.pem"))
    return ca.write_ca(directory, "ca"), cert, os.path.join(directory, "key.pem")
