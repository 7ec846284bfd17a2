"""Content Credentials (C2PA) on delivered assets: sign, read back, and make a development
certificate chain. Usable without Django.

Every delivered PNG carries one signed C2PA manifest, made with the official ``c2pa-python``
library (which bundles the Rust c2pa SDK):

* the uploaded photo as a ``componentOf`` ingredient, its file's sha256 in the ingredient's
  ``metadata["com.vitrine.original_sha256"]`` (C2PA keeps no content hash of an ingredient that
  has no manifest of its own);
* ``c2pa.actions.v2``: ``c2pa.created`` with IPTC digitalSourceType
  ``compositeWithTrainedAlgorithmicMedia`` (the scene around the product is generated),
  ``c2pa.placed`` (the product photo, referencing the ingredient) and, for a resampled lock,
  ``c2pa.resized`` with the scale and the filter;
* ``com.vitrine.lock``: ``{"version": 1, "certificate": "<JSON text>"}``, the lock certificate
  exactly as the ``vitrine:lock`` chunk carries it. As text on purpose: the SDK turns a JSON
  array of integers into a CBOR byte string (``canvas_size`` ``[1024, 1024]`` came back as two
  zero bytes), so structured data would not survive the round trip.

The manifest goes into a ``caBX`` chunk; C2PA's data hash covers every other byte of the file,
so changing one pixel, one byte or the recipe chunk makes the manifest fail validation. The
XMP packet and the ``vitrine:lock`` chunk stay as they were (readers without C2PA, and the
independent verifier, read those).

Where the key comes from: :func:`credentials_from_environment` reads ``VITRINE_C2PA_KEY`` (PEM
private key) and ``VITRINE_C2PA_CERT`` (PEM chain, end-entity first); the Django settings set
both. With ``VITRINE_C2PA_DEV_CERT`` on (the default outside production) a missing pair is
created as a development chain (:func:`write_dev_chain`) on first use.
"""
from __future__ import annotations

import contextlib
import datetime
import fcntl
import io
import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "DEV_ORGANIZATION",
    "LOCK_ASSERTION",
    "Credentials",
    "CredentialsMissing",
    "credentials_from_environment",
    "load_credentials",
    "make_dev_chain",
    "manifest_definition",
    "read_manifest",
    "sign_asset",
    "sign_png",
    "summary",
    "write_dev_chain",
]

#: The Vitrine assertion: the lock certificate (``generation.lock.LockCertificate.to_dict()``).
LOCK_ASSERTION = "com.vitrine.lock"
ORIGINAL_SHA256_KEY = "com.vitrine.original_sha256"
#: The organisation a development chain names; :func:`summary` calls such a signer "development".
DEV_ORGANIZATION = "Vitrine (development)"
#: What an untrusted signer gets from the reader when no trust list names it; the only status
#: a good asset signed by a development certificate may carry.
UNTRUSTED = "signingCredential.untrusted"
ALG = "es256"


class CredentialsMissing(RuntimeError):
    """No signing key and certificate where the settings say; the message says what to do."""


@dataclass(frozen=True)
class Credentials:
    """A C2PA signing key and its certificate chain (PEM, end-entity first)."""

    key_pem: bytes
    chain_pem: bytes
    alg: str = ALG


def load_credentials(key_path: str | os.PathLike, cert_path: str | os.PathLike) -> Credentials:
    key, cert = Path(key_path), Path(cert_path)
    for path, what in ((key, "private key"), (cert, "certificate chain")):
        if not path.is_file():
            raise CredentialsMissing(
                f"The Content Credentials {what} {path} does not exist. Set VITRINE_C2PA_KEY and VITRINE_C2PA_CERT "
                "to your signing key and certificate chain, or run `python manage.py c2pa_dev_cert` for a development pair."
            )
    return Credentials(key_pem=key.read_bytes(), chain_pem=cert.read_bytes())


_cache: dict[tuple, Credentials] = {}
_cache_lock = threading.Lock()


def credentials_from_environment() -> Credentials | None:
    """The signing credentials named by ``VITRINE_C2PA_KEY`` / ``VITRINE_C2PA_CERT``, read at
    call time (cached by path and modification time), or None when neither is set (plain
    library use with nothing configured: the asset then carries the XMP mark only).

    A named pair that does not exist is created as a development chain when
    ``VITRINE_C2PA_DEV_CERT`` is true, and is an error (:class:`CredentialsMissing`) otherwise."""
    key_path, cert_path = os.environ.get("VITRINE_C2PA_KEY"), os.environ.get("VITRINE_C2PA_CERT")
    if not key_path and not cert_path:
        return None
    if not key_path or not cert_path:
        raise CredentialsMissing("Set both VITRINE_C2PA_KEY and VITRINE_C2PA_CERT (a signing key needs its certificate chain).")
    key, cert = Path(key_path), Path(cert_path)
    if not (key.is_file() and cert.is_file()) and os.environ.get("VITRINE_C2PA_DEV_CERT", "").lower() in ("1", "true", "yes"):
        write_dev_chain(key, cert)
    with _cache_lock:
        try:
            stamp = (str(key), key.stat().st_mtime_ns, str(cert), cert.stat().st_mtime_ns)
        except FileNotFoundError:
            stamp = None
        if stamp is not None and stamp in _cache:
            return _cache[stamp]
        credentials = load_credentials(key, cert)
        if stamp is not None:
            _cache.clear()
            _cache[stamp] = credentials
        return credentials


# Development certificates -------------------------------------------------------------------


def make_dev_chain(*, days: int = 730, organization: str = DEV_ORGANIZATION) -> tuple[bytes, bytes, bytes]:
    """A development root CA and an end-entity signing certificate it issued, as C2PA asks of a
    signer: X.509 v3, ECDSA P-256 (ES256), not a CA, key usage digitalSignature (critical),
    extended key usage emailProtection + documentSigning, subject and authority key
    identifiers. Returns ``(private_key_pem, chain_pem, root_pem)``; the chain holds the
    end-entity certificate only (a verifier adds the root from its trust list, never from the
    file it is checking)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    root_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())

    def name(common: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common), x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization)])

    def usage(*, sign: bool, ca: bool) -> x509.KeyUsage:
        return x509.KeyUsage(
            digital_signature=sign, content_commitment=False, key_encipherment=False, data_encipherment=False,
            key_agreement=False, key_cert_sign=ca, crl_sign=ca, encipher_only=False, decipher_only=False,
        )

    root_name = name("Vitrine development root CA")
    root = (
        x509.CertificateBuilder().subject_name(root_name).issuer_name(root_name).public_key(root_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=days + 365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(usage(sign=False, ca=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(root_key.public_key()), critical=False)
        .sign(root_key, hashes.SHA256())
    )
    leaf = (
        x509.CertificateBuilder().subject_name(name("Vitrine development signer")).issuer_name(root_name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(usage(sign=True, ca=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION, x509.ObjectIdentifier("1.3.6.1.5.5.7.3.36")]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()), critical=False)
        .sign(root_key, hashes.SHA256())
    )
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return key_pem, leaf.public_bytes(serialization.Encoding.PEM), root.public_bytes(serialization.Encoding.PEM)


def dev_root_path(cert_path: str | os.PathLike) -> Path:
    """Where :func:`write_dev_chain` puts the development root next to the chain."""
    cert = Path(cert_path)
    return cert.with_name(cert.stem + "-root.pem")


def write_dev_chain(key_path: str | os.PathLike, cert_path: str | os.PathLike, *, force: bool = False) -> bool:
    """Create a development chain at ``key_path`` / ``cert_path`` (and the root next to the
    chain, :func:`dev_root_path`) unless both exist. Safe when several processes start at once
    (a lock file; each file is written whole, then renamed). Returns True if it wrote one."""
    key, cert = Path(key_path), Path(cert_path)
    key.parent.mkdir(parents=True, exist_ok=True)
    cert.parent.mkdir(parents=True, exist_ok=True)
    with open(cert.with_name(cert.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not force and key.is_file() and cert.is_file():
            return False
        key_pem, chain_pem, root_pem = make_dev_chain()
        for path, data, mode in ((dev_root_path(cert), root_pem, 0o644), (cert, chain_pem, 0o644), (key, key_pem, 0o600)):
            tmp = path.with_name(path.name + ".tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            os.replace(tmp, path)
        return True


# Signing ------------------------------------------------------------------------------------


def manifest_definition(*, certificate: dict, software: str, title: str = "asset.png") -> dict:
    """The manifest for one delivered asset, from its lock certificate (plain JSON)."""
    from generation.provenance import DIGITAL_SOURCE_TYPE

    original = certificate.get("original_sha256") or ""
    transform = certificate.get("transform") or {}
    actions: list[dict[str, Any]] = [
        {
            "action": "c2pa.created",
            "digitalSourceType": DIGITAL_SOURCE_TYPE,
            "softwareAgent": {"name": software},
            "description": "The scene around the product was generated by a trained model; the product is the uploaded photo.",
        },
        {
            "action": "c2pa.placed",
            "softwareAgent": {"name": software},
            "description": f"The product from the uploaded photo placed on the canvas ({certificate.get('kind')} lock).",
            "parameters": {"ingredientIds": ["original"]},
        },
    ]
    if certificate.get("kind") == "resampled":
        actions.append({
            "action": "c2pa.resized",
            "softwareAgent": {"name": software},
            "description": f"The product resized {float(transform.get('scale', 1.0)):g}× with {certificate.get('filter')}.",
            "parameters": {"scale": transform.get("scale"), "filter": certificate.get("filter")},
        })
    return {
        "claim_generator_info": [{"name": software}],
        "title": title,
        "format": "image/png",
        "ingredients": [
            {
                "title": "uploaded product photo",
                "format": "application/octet-stream",
                "relationship": "componentOf",
                "label": "original",
                "description": f"The uploaded photo whose product pixels this image carries (file sha256 {original}).",
                "metadata": {ORIGINAL_SHA256_KEY: original},
            }
        ],
        "assertions": [
            {"label": "c2pa.actions.v2", "data": {"actions": actions}},
            {"label": LOCK_ASSERTION, "data": {"version": 1, "certificate": json.dumps(certificate, sort_keys=True)}},
        ],
    }


def _context(settings: dict):
    import c2pa

    return c2pa.Context(c2pa.Settings.from_dict(settings))


def sign_png(png: bytes, *, certificate: dict, software: str, credentials: Credentials, title: str = "asset.png") -> bytes:
    """``png`` with a signed C2PA manifest embedded (a ``caBX`` chunk after IHDR); every other
    chunk is kept byte for byte. No thumbnail: the asset is its own picture, and a JPEG
    thumbnail of a 2048 px scene would add ~0.9 MB and a second encode."""
    import c2pa

    signer = c2pa.Signer.from_info(c2pa.C2paSignerInfo(credentials.alg.encode("ascii"), credentials.chain_pem, credentials.key_pem, None))
    builder = c2pa.Builder(
        manifest_definition(certificate=certificate, software=software, title=title),
        _context({"builder": {"thumbnail": {"enabled": False}}}),
    )
    out = io.BytesIO()
    with contextlib.closing(signer):
        builder.sign(signer, "image/png", io.BytesIO(png), out)
    return out.getvalue()


def sign_asset(png: bytes, *, certificate: dict, software: str) -> bytes:
    """The delivered form of an asset: signed with :func:`credentials_from_environment`'s
    credentials, or returned as it is when none are configured at all (library use)."""
    credentials = credentials_from_environment()
    if credentials is None:
        return png
    return sign_png(png, certificate=certificate, software=software, credentials=credentials)


# Reading back -------------------------------------------------------------------------------


def read_manifest(png: bytes, *, trust_anchors: bytes | None = None) -> dict:
    """The active manifest of ``png`` and whether it validates, as plain JSON:

    ``present`` (a manifest was found), ``state`` (the SDK's validation_state: "Valid",
    "Trusted" with ``trust_anchors`` naming the signer's root, "Invalid", or None), ``statuses``
    (the failure codes, e.g. ``assertion.dataHash.mismatch``), ``valid`` (hashes and signature
    good: state Valid/Trusted and no status other than an untrusted signer), ``trusted``,
    ``issuer`` / ``common_name`` of the signer, ``development`` (issued by a Vitrine development
    chain), ``actions``, ``digital_source_type``, ``original_sha256`` (from the ingredient),
    ``lock`` (the certificate in the com.vitrine.lock assertion) and ``error`` (why nothing could be read)."""
    import c2pa

    result: dict[str, Any] = {
        "present": False, "state": None, "statuses": [], "valid": False, "trusted": False, "issuer": None,
        "common_name": None, "development": False, "actions": [], "digital_source_type": None,
        "original_sha256": None, "lock": None, "error": None,
    }
    settings: dict[str, Any] = {"verify": {"verify_trust": True}}
    if trust_anchors:
        settings["trust"] = {"trust_anchors": trust_anchors.decode("ascii")}
    try:
        reader = c2pa.Reader("image/png", io.BytesIO(png), context=_context(settings))
        with contextlib.closing(reader):
            store = json.loads(reader.json())
    except c2pa.C2paError as exc:
        result["error"] = str(exc) or type(exc).__name__
        return result
    manifest = (store.get("manifests") or {}).get(store.get("active_manifest") or "")
    if manifest is None:
        result["error"] = "no active manifest"
        return result
    result["present"] = True
    result["state"] = store.get("validation_state")
    result["statuses"] = [s.get("code") for s in store.get("validation_status") or []]
    result["trusted"] = result["state"] == "Trusted"
    result["valid"] = result["state"] in ("Valid", "Trusted") and set(result["statuses"]) <= {UNTRUSTED}
    signature = manifest.get("signature_info") or {}
    result["issuer"], result["common_name"] = signature.get("issuer"), signature.get("common_name")
    result["development"] = result["issuer"] == DEV_ORGANIZATION
    for assertion in manifest.get("assertions") or []:
        if assertion.get("label", "").startswith("c2pa.actions"):
            result["actions"] = (assertion.get("data") or {}).get("actions") or []
        elif assertion.get("label") == LOCK_ASSERTION:
            try:
                result["lock"] = json.loads((assertion.get("data") or {})["certificate"])
            except (KeyError, TypeError, ValueError):
                result["lock"] = None
    result["digital_source_type"] = next((a.get("digitalSourceType") for a in result["actions"] if a.get("digitalSourceType")), None)
    for ingredient in manifest.get("ingredients") or []:
        if ingredient.get("relationship") == "componentOf" and ORIGINAL_SHA256_KEY in (ingredient.get("metadata") or {}):
            result["original_sha256"] = ingredient["metadata"][ORIGINAL_SHA256_KEY]
    return result


def summary(manifest: dict) -> str:
    """One line for people: "Content Credentials: valid (untrusted development certificate)"."""
    if not manifest["present"]:
        return "Content Credentials: none" + (f" ({manifest['error']})" if manifest.get("error") else "")
    if not manifest["valid"]:
        codes = ", ".join(c for c in manifest["statuses"] if c != UNTRUSTED) or str(manifest["state"])
        return f"Content Credentials: INVALID ({codes})"
    if manifest["trusted"]:
        return f"Content Credentials: valid (trusted signer: {manifest['issuer']})"
    if manifest["development"]:
        return "Content Credentials: valid (untrusted development certificate)"
    return f"Content Credentials: valid (signer {manifest['issuer']!r} is not in your trust list)"
