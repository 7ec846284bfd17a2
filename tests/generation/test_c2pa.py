"""Content Credentials: every rendered asset carries a signed C2PA manifest that c2pa-python's
Reader validates and that matches the lock certificate; a tampered file fails validation, and
the independent verifier catches tampering with and without C2PA."""
from __future__ import annotations

import hashlib
import io
import json
import os
import struct
import zlib

import c2pa
import numpy as np
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from django.core.management import call_command
from PIL import Image

from generation import credentials
from generation.credentials import (
    DEV_ORGANIZATION,
    LOCK_ASSERTION,
    CredentialsMissing,
    credentials_from_environment,
    make_dev_chain,
    read_manifest,
    sign_png,
    write_dev_chain,
)
from generation.imaging import array_sha256
from generation.provenance import DIGITAL_SOURCE_TYPE, XMP_KEYWORD, encode_png, read_xmp
from generation.verify import LOCK_KEYWORD, read_lock_recipe, verify_asset
from tests.generation.test_verify import _assets, _photo

UNTRUSTED = "signingCredential.untrusted"


def _chunks(png: bytes) -> list[tuple[bytes, bytes]]:
    out, offset = [], 8
    while offset < len(png):
        length, kind = struct.unpack(">I4s", png[offset : offset + 8])
        out.append((kind, png[offset + 8 : offset + 8 + length]))
        offset += 12 + length
    return out


def _png(chunks: list[tuple[bytes, bytes]]) -> bytes:
    body = b"".join(struct.pack(">I", len(d)) + k + d + struct.pack(">I", zlib.crc32(k + d) & 0xFFFFFFFF) for k, d in chunks)
    return b"\x89PNG\r\n\x1a\n" + body


def _reader(png: bytes) -> tuple[str | None, list[str], dict]:
    """c2pa-python's own Reader, without the project's wrapper."""
    reader = c2pa.Reader("image/png", io.BytesIO(png))
    store = json.loads(reader.json())
    reader.close()
    return store.get("validation_state"), [s["code"] for s in store.get("validation_status", [])], store["manifests"][store["active_manifest"]]


@pytest.fixture(scope="module")
def photo():
    return _photo(seed=7)


@pytest.fixture(scope="module")
def rendered(photo):
    original, rgb, mask = photo
    assets = {a.channel: a for a in _assets(original, rgb, mask, ("as-photo", "square-2048"))}
    assert assets["as-photo"].certificate.kind == "pixel-identical" and assets["square-2048"].certificate.kind == "resampled"
    return original, assets


def test_the_suite_signs_with_a_development_chain_from_the_settings(settings) -> None:
    assert os.environ["VITRINE_C2PA_KEY"] == settings.VITRINE_C2PA_KEY
    assert os.environ["VITRINE_C2PA_CERT"] == settings.VITRINE_C2PA_CERT
    assert credentials_from_environment() is not None


@pytest.mark.parametrize("channel", ["as-photo", "square-2048"])
def test_every_rendered_asset_validates_and_its_manifest_matches_the_certificate(rendered, channel) -> None:
    original, assets = rendered
    asset = assets[channel]
    state, codes, manifest = _reader(asset.png)
    # Hashes and signature valid; an untrusted development certificate is the only status allowed.
    assert state == "Valid" and codes == [UNTRUSTED], codes
    assert manifest["signature_info"]["issuer"] == DEV_ORGANIZATION

    cert = asset.certificate.to_dict()
    (lock,) = [json.loads(a["data"]["certificate"]) for a in manifest["assertions"] if a["label"] == LOCK_ASSERTION]
    assert lock == cert == read_lock_recipe(asset.png)["certificate"]
    # The manifest's hashes are the certificate's: the original file, and the delivered pixels.
    (ingredient,) = manifest["ingredients"]
    assert ingredient["relationship"] == "componentOf"
    assert ingredient["metadata"]["com.vitrine.original_sha256"] == cert["original_sha256"] == hashlib.sha256(original).hexdigest()
    pixels = np.asarray(Image.open(io.BytesIO(asset.png)).convert("RGB"))
    assert lock["image_sha256"] == array_sha256(pixels)

    (actions,) = [a["data"]["actions"] for a in manifest["assertions"] if a["label"] == "c2pa.actions.v2"]
    names = [a["action"] for a in actions]
    assert names == (["c2pa.created", "c2pa.placed"] + (["c2pa.resized"] if cert["kind"] == "resampled" else []))
    assert actions[0]["digitalSourceType"] == DIGITAL_SOURCE_TYPE
    assert actions[1]["parameters"]["ingredients"][0]["url"].endswith("c2pa.ingredient.v3")
    if cert["kind"] == "resampled":
        assert actions[2]["parameters"]["scale"] == cert["transform"]["scale"]
        assert actions[2]["parameters"]["filter"] == cert["filter"]

    # The project's reader says the same, and the other marks stay for readers without C2PA.
    summary = read_manifest(asset.png)
    assert summary["valid"] and summary["development"] and not summary["trusted"]
    assert (summary["original_sha256"], summary["lock"], summary["digital_source_type"]) == (cert["original_sha256"], cert, DIGITAL_SOURCE_TYPE)
    assert DIGITAL_SOURCE_TYPE in read_xmp(asset.png)
    assert verify_asset(asset.png, original).verdict in ("identical", "resampled-as-declared")


def test_the_development_root_makes_the_signer_trusted(rendered, settings) -> None:
    _, assets = rendered
    root = credentials.dev_root_path(settings.VITRINE_C2PA_CERT).read_bytes()
    assert read_manifest(assets["as-photo"].png, trust_anchors=root)["trusted"]
    _, _, other_root = make_dev_chain()
    assert not read_manifest(assets["as-photo"].png, trust_anchors=other_root)["trusted"]


def _with_pixel_changed(png: bytes, y: int, x: int) -> bytes:
    """The same file with one product pixel changed: re-encoded, every other chunk (the
    signed manifest, XMP, lock recipe) carried over as it was."""
    pixels = np.array(Image.open(io.BytesIO(png)).convert("RGB"))
    pixels[y, x, 1] ^= 0x01
    fresh = _chunks(encode_png(pixels, xmp=""))
    kept = [(k, d) for k, d in _chunks(png) if k not in (b"IHDR", b"IDAT", b"IEND")]
    return _png([fresh[0], *kept, *[(k, d) for k, d in fresh if k == b"IDAT"], (b"IEND", b"")])


def _product_pixel(png: bytes) -> tuple[int, int]:
    t = read_lock_recipe(png)["certificate"]["transform"]
    return int(t["dy"] + 45 * t["scale"]), int(t["dx"] + 60 * t["scale"])


@pytest.mark.parametrize("channel", ["as-photo", "square-2048"])
def test_one_changed_pixel_fails_validation_and_the_verifier(rendered, channel) -> None:
    original, assets = rendered
    tampered = _with_pixel_changed(assets[channel].png, *_product_pixel(assets[channel].png))
    assert _chunks(tampered)[1][0] == b"caBX"  # the manifest is still there, in its place
    state, codes, _ = _reader(tampered)
    assert state == "Invalid" and "assertion.dataHash.mismatch" in codes
    assert not read_manifest(tampered)["valid"]
    verdict = verify_asset(tampered, original)
    assert verdict.verdict == "changed" and verdict.changed_pixels == 1


def test_one_changed_byte_outside_the_pixels_fails_validation(rendered) -> None:
    original, assets = rendered
    png = assets["as-photo"].png
    chunks = _chunks(png)
    i = next(i for i, (k, d) in enumerate(chunks) if k == b"iTXt" and d.startswith(XMP_KEYWORD.encode()))
    data = bytearray(chunks[i][1])
    data[data.index(b"CreatorTool>") + len(b"CreatorTool>")] ^= 0x20  # one letter of the software name
    chunks[i] = (b"iTXt", bytes(data))
    tampered = _png(chunks)
    assert len(tampered) == len(png) and sum(a != b for a, b in zip(tampered, png)) <= 5  # the byte and its chunk CRC
    state, codes, _ = _reader(tampered)
    assert state == "Invalid" and "assertion.dataHash.mismatch" in codes
    # The pixels are untouched, so the lock still verifies: only C2PA sees this one.
    assert verify_asset(tampered, original).verdict == "identical"


def test_a_flipped_byte_in_the_compressed_pixels_fails_validation(rendered) -> None:
    png = bytearray(rendered[1]["square-2048"].png)
    offset = png.rindex(b"IDAT") + 4 + 50
    png[offset] ^= 0x01  # chunk CRC now wrong too, as a careless edit leaves it
    state, codes, _ = _reader(bytes(png))
    assert state == "Invalid" and "assertion.dataHash.mismatch" in codes


@pytest.mark.parametrize("signed", [True, False], ids=["with-c2pa", "without-c2pa"])
def test_the_verifier_catches_a_changed_pixel_with_and_without_c2pa(rendered, signed) -> None:
    original, assets = rendered
    png = assets["square-2048"].png
    if not signed:
        png = _png([(k, d) for k, d in _chunks(png) if k != b"caBX"])
        assert not read_manifest(png)["present"]
        assert verify_asset(png, original).verdict == "resampled-as-declared"
    tampered = _with_pixel_changed(png, *_product_pixel(png))
    verdict = verify_asset(tampered, original)
    assert verdict.verdict == "changed" and verdict.changed_pixels == 1


def test_an_unsigned_or_resigned_copy_is_not_the_signed_asset(rendered) -> None:
    """Signing a tampered file again with another key validates, but names another signer:
    the manifest's lock assertion still has to agree with the pixels (the verifier's job)."""
    original, assets = rendered
    png = assets["as-photo"].png
    stripped = _png([(k, d) for k, d in _chunks(png) if k != b"caBX"])
    tampered = _with_pixel_changed(stripped, *_product_pixel(png))
    key, chain, _ = make_dev_chain(organization="Someone else")
    forged = sign_png(tampered, certificate=read_lock_recipe(png)["certificate"], software="x", credentials=credentials.Credentials(key, chain))
    summary = read_manifest(forged)
    assert summary["valid"] and not summary["development"] and summary["issuer"] == "Someone else"
    assert verify_asset(forged, original).verdict == "changed"


def test_the_development_chain_has_what_c2pa_asks_of_a_signer() -> None:
    _, chain, root_pem = make_dev_chain()
    (leaf,) = x509.load_pem_x509_certificates(chain)
    root = x509.load_pem_x509_certificate(root_pem)
    assert leaf.issuer == root.subject != leaf.subject
    assert leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    usage = leaf.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical and usage.value.digital_signature
    ekus = {oid.dotted_string for oid in leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value}
    assert ekus == {"1.3.6.1.5.5.7.3.4", "1.3.6.1.5.5.7.3.36"}  # emailProtection, documentSigning
    root.public_key().verify(leaf.signature, leaf.tbs_certificate_bytes, ec.ECDSA(leaf.signature_hash_algorithm))


def test_missing_credentials_are_made_only_where_development_chains_are_allowed(tmp_path, monkeypatch) -> None:
    key, cert = tmp_path / "c2pa" / "k.pem", tmp_path / "c2pa" / "chain.pem"
    monkeypatch.setenv("VITRINE_C2PA_KEY", str(key))
    monkeypatch.setenv("VITRINE_C2PA_CERT", str(cert))
    monkeypatch.setenv("VITRINE_C2PA_DEV_CERT", "false")
    with pytest.raises(CredentialsMissing, match="c2pa_dev_cert"):
        credentials_from_environment()
    assert not key.exists()
    png = encode_png(np.zeros((8, 8, 3), np.uint8), xmp="")
    with pytest.raises(CredentialsMissing):  # a render fails rather than deliver an unsigned asset
        encode_png(np.zeros((8, 8, 3), np.uint8), xmp="", certificate={"kind": "pixel-identical"})

    monkeypatch.setenv("VITRINE_C2PA_DEV_CERT", "true")
    made = credentials_from_environment()
    assert key.is_file() and cert.is_file() and oct(key.stat().st_mode & 0o777) == "0o600"
    assert credentials_from_environment() is made  # cached while the files stay the same
    assert read_manifest(sign_png(png, certificate={}, software="t", credentials=made))["valid"]

    monkeypatch.delenv("VITRINE_C2PA_KEY")
    monkeypatch.delenv("VITRINE_C2PA_CERT")
    assert credentials_from_environment() is None  # plain library use, nothing configured
    assert encode_png(np.zeros((8, 8, 3), np.uint8), xmp="", certificate={}) == png


def test_c2pa_dev_cert_command_makes_a_chain_once(tmp_path, settings) -> None:
    settings.VITRINE_C2PA_KEY, settings.VITRINE_C2PA_CERT = str(tmp_path / "s.key"), str(tmp_path / "s.pem")
    out = io.StringIO()
    call_command("c2pa_dev_cert", stdout=out)
    assert "development signing key" in out.getvalue()
    first = (tmp_path / "s.pem").read_bytes()
    call_command("c2pa_dev_cert", stdout=io.StringIO())
    assert (tmp_path / "s.pem").read_bytes() == first
    call_command("c2pa_dev_cert", "--force", stdout=io.StringIO())
    assert (tmp_path / "s.pem").read_bytes() != first and (tmp_path / "s-root.pem").is_file()
    assert write_dev_chain(tmp_path / "s.key", tmp_path / "s.pem") is False


def test_verify_command_reports_content_credentials(rendered, tmp_path) -> None:
    original, assets = rendered
    png = assets["square-2048"].png
    (tmp_path / "photo.png").write_bytes(original)
    (tmp_path / "asset.png").write_bytes(png)
    out = io.StringIO()
    call_command("verify", str(tmp_path / "asset.png"), str(tmp_path / "photo.png"), stdout=out)
    assert out.getvalue().splitlines()[-1] == "Content Credentials: valid (untrusted development certificate)"

    chunks = _chunks(png)
    i = next(i for i, (k, _) in enumerate(chunks) if k == b"iTXt" and _.startswith(XMP_KEYWORD.encode()))
    chunks[i] = (b"iTXt", chunks[i][1].replace(b"CreatorTool>", b"CreatorTool> ", 1))
    (tmp_path / "tampered.png").write_bytes(_png(chunks))
    out = io.StringIO()
    with pytest.raises(SystemExit) as exit_info:
        call_command("verify", str(tmp_path / "tampered.png"), str(tmp_path / "photo.png"), stdout=out)
    assert exit_info.value.code == 1
    assert out.getvalue().splitlines()[0].startswith("resampled-as-declared")  # the pixels are fine
    assert out.getvalue().splitlines()[-1].startswith("Content Credentials: INVALID (assertion.dataHash.mismatch")
