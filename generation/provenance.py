"""Marking delivered images as AI-composited, in a way that survives: the XMP packet is
written into the PNG itself as the last step (any Pillow re-encode after it would drop it)."""
from __future__ import annotations

import io
import struct
import zlib
from xml.sax.saxutils import escape

import numpy as np
from PIL import Image, PngImagePlugin

#: IPTC: the product is a real photo, the scene around it is generated.
DIGITAL_SOURCE_TYPE = "http://cv.iptc.org/newscodes/digitalsourcetype/compositeWithTrainedAlgorithmicMedia"
XMP_KEYWORD = "XML:com.adobe.xmp"


def xmp_packet(*, software: str, extra: dict[str, str] | None = None) -> str:
    """An XMP packet with Iptc4xmpExt:DigitalSourceType and a few Vitrine facts."""
    fields = "".join(f"\n      <vitrine:{escape(k)}>{escape(str(v))}</vitrine:{escape(k)}>" for k, v in (extra or {}).items())
    return (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/">\n'
        ' <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">\n'
        '  <rdf:Description rdf:about=""\n'
        '    xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/"\n'
        '    xmlns:xmp="http://ns.adobe.com/xap/1.0/"\n'
        '    xmlns:vitrine="https://vitrine.dev/ns/1.0/">\n'
        f"      <Iptc4xmpExt:DigitalSourceType>{DIGITAL_SOURCE_TYPE}</Iptc4xmpExt:DigitalSourceType>\n"
        f"      <xmp:CreatorTool>{escape(software)}</xmp:CreatorTool>{fields}\n"
        "  </rdf:Description>\n"
        " </rdf:RDF>\n"
        "</x:xmpmeta>\n"
        '<?xpacket end="w"?>'
    )


#: zlib level 1: scenes carry film grain, which deflate barely shrinks at any level, while
#: level 6 takes about four times as long for files about 12 % smaller (``bench/png_level.py``,
#: figures in docs/benchmarks.md); the pixels are the same either way.
PNG_COMPRESS_LEVEL = 1


def encode_png(
    image: np.ndarray,
    *,
    xmp: str,
    compress_level: int = PNG_COMPRESS_LEVEL,
    texts: dict[str, str] | None = None,
    certificate: dict | None = None,
    software: str = "Vitrine",
) -> bytes:
    """Encode the final RGB pixels as PNG (lossless: the locked pixels stay exact) with the
    XMP packet in an iTXt chunk, and each of ``texts`` (keyword: text) in a compressed iTXt
    chunk (the lock recipe). This is the last encode an asset goes through.

    With ``certificate`` (the lock certificate's ``to_dict()``) the file is then signed with
    Content Credentials (:func:`generation.credentials.sign_asset`: a C2PA manifest in a caBX
    chunk; the pixels and the other chunks stay byte for byte)."""
    info = PngImagePlugin.PngInfo()
    info.add_itxt(XMP_KEYWORD, xmp, lang="", tkey="", zip=False)
    for keyword, text in (texts or {}).items():
        info.add_itxt(keyword, text, lang="", tkey="", zip=True)
    buffer = io.BytesIO()
    Image.fromarray(image, "RGB").save(buffer, format="PNG", pnginfo=info, compress_level=compress_level)
    if certificate is None:
        return buffer.getvalue()
    from generation.credentials import sign_asset

    return sign_asset(buffer.getvalue(), certificate=certificate, software=software)


def read_xmp(png: bytes) -> str | None:
    """The XMP packet of a PNG, read from its chunks directly (independently of Pillow)."""
    if png[:8] != b"\x89PNG\r\n\x1a\n":
        return None
    offset = 8
    while offset + 8 <= len(png):
        length, kind = struct.unpack(">I4s", png[offset : offset + 8])
        data = png[offset + 8 : offset + 8 + length]
        if kind == b"iTXt":
            keyword, _, rest = data.partition(b"\x00")
            if keyword.decode("latin-1") == XMP_KEYWORD:
                compressed = rest[0]  # then one byte of compression method
                _lang, _, rest = rest[2:].partition(b"\x00")
                _tkey, _, text = rest.partition(b"\x00")
                return (zlib.decompress(text) if compressed else text).decode("utf-8")
        if kind == b"IEND":
            break
        offset += 12 + length
    return None


def decode_png(png: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(png)) as image:
        return np.asarray(image.convert("RGB"))
