"""Instance-store image bundles: the manifest `ec2-bundle-image` writes (version
2007-10-10) and the rules RegisterImage applies to it.

    <manifest><version>2007-10-10</version>
      <machine_configuration><architecture>x86_64</architecture>
        <block_device_mapping><mapping><virtual>ami</virtual><device>sda1</device></mapping>
          <mapping><virtual>root</virtual><device>/dev/sda1</device></mapping>...
      </machine_configuration>
      <image><name>disk.img</name><user>123456789012</user><type>machine</type>
        <digest algorithm="SHA1">..</digest><size>..</size><bundled_size>..</bundled_size>
        <parts count="N"><part index="0"><filename>disk.img.part.0</filename>
          <digest algorithm="SHA1">..</digest></part>...</parts></image>
    </manifest>

EC2's bundles are also encrypted to EC2's certificate and signed with the bundler's key;
snapferry has neither key, so it checks what it can know: the manifest's shape, and that
every part exists, is readable by the caller and has the SHA-1 the manifest names.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass

from snapferry.errors import ServiceError

MANIFEST_VERSION = "2007-10-10"
MAX_MANIFEST_BYTES = 1024 * 1024
MAX_PARTS = 10000
ARCHITECTURES = ("i386", "x86_64", "arm64")
_SHA1 = re.compile(r"^[0-9a-f]{40}$")
_PART_NAME = re.compile(r"^[A-Za-z0-9._\-]{1,255}$")


@dataclass(frozen=True)
class Part:
    index: int
    filename: str
    sha1: str  # hex


@dataclass(frozen=True)
class Manifest:
    name: str
    architecture: str
    size: int
    parts: tuple[Part, ...]
    mappings: tuple[tuple[str, str], ...]  # (virtual name, device)

    @property
    def root_device_name(self) -> str:
        for virtual, device in self.mappings:
            if virtual == "root":
                return device if device.startswith("/dev/") else f"/dev/{device}"
        return "/dev/sda1"

    def ephemeral(self) -> list[tuple[str, str]]:
        """(device name, virtual name) of the instance-store volumes the image maps."""
        return [(d if d.startswith("/dev/") else f"/dev/{d}", v) for v, d in self.mappings
                if v.startswith("ephemeral")]


def invalid(detail: str) -> ServiceError:
    return ServiceError("InvalidManifest", f"The manifest is not valid: {detail}")


def split_location(location: str) -> tuple[str, str]:
    """`bucket/path/name.manifest.xml` -> (bucket, key)."""
    bucket, _, key = location.lstrip("/").partition("/")
    if not bucket or not key:
        raise ServiceError("InvalidParameterValue", f"ImageLocation '{location[:200]}' must be "
                           "<bucket>/<path to the manifest>, e.g. my-bucket/image.manifest.xml.")
    return bucket, key


def part_key(manifest_key: str, filename: str) -> str:
    """Parts live beside their manifest."""
    folder = manifest_key.rpartition("/")[0]
    return f"{folder}/{filename}" if folder else filename


def _text(element: ET.Element, path: str, what: str) -> str:
    found = element.find(path)
    if found is None or not (found.text or "").strip():
        raise invalid(f"it has no {what} ({path}).")
    return (found.text or "").strip()


def parse(document: bytes) -> Manifest:
    if len(document) > MAX_MANIFEST_BYTES:
        raise invalid(f"it is larger than {MAX_MANIFEST_BYTES} bytes.")
    if b"<!DOCTYPE" in document or b"<!ENTITY" in document:
        raise invalid("DTDs and entity declarations are not allowed.")
    try:
        root = ET.fromstring(document)
    except ET.ParseError as error:
        raise invalid(f"it is not well-formed XML ({error}).") from None
    if root.tag != "manifest":
        raise invalid("its root element is not <manifest>.")
    version = _text(root, "version", "version")
    if version != MANIFEST_VERSION:
        raise invalid(f"version {version[:20]!r} is not {MANIFEST_VERSION}.")
    architecture = _text(root, "machine_configuration/architecture", "architecture")
    if architecture not in ARCHITECTURES:
        raise invalid(f"architecture {architecture[:20]!r} is not one of "
                      f"{', '.join(ARCHITECTURES)}.")
    image = root.find("image")
    if image is None:
        raise invalid("it has no <image>.")
    size_text = _text(image, "size", "image size")
    if not size_text.isdigit() or int(size_text) <= 0:
        raise invalid(f"image size {size_text[:20]!r} is not a positive number of bytes.")
    parts = _parts(image)
    mappings = tuple(
        (_text(m, "virtual", "mapping virtual name"), _text(m, "device", "mapping device"))
        for m in root.findall("machine_configuration/block_device_mapping/mapping"))
    return Manifest(_text(image, "name", "image name"), architecture, int(size_text), parts,
                    mappings)


def _parts(image: ET.Element) -> tuple[Part, ...]:
    holder = image.find("parts")
    if holder is None:
        raise invalid("it has no <parts>.")
    elements = holder.findall("part")
    if not elements or len(elements) > MAX_PARTS:
        raise invalid(f"it must list 1 to {MAX_PARTS} parts.")
    if holder.get("count") != str(len(elements)):
        raise invalid(f"parts count {holder.get('count')!r} does not match the "
                      f"{len(elements)} parts listed.")
    parts = []
    for position, element in enumerate(elements):
        if element.get("index") != str(position):
            raise invalid(f"part {position} has index {element.get('index')!r}: parts are "
                          "numbered 0, 1, 2, ... in order.")
        filename = _text(element, "filename", f"filename for part {position}")
        if not _PART_NAME.match(filename) or filename in (".", ".."):
            raise invalid(f"part filename {filename[:60]!r} is not a plain file name.")
        digest = element.find("digest")
        if digest is None or (digest.get("algorithm") or "").upper() != "SHA1":
            raise invalid(f"part {position} needs a <digest algorithm=\"SHA1\">.")
        sha1 = (digest.text or "").strip().lower()
        if not _SHA1.match(sha1):
            raise invalid(f"part {position}'s digest is not 40 hexadecimal digits.")
        parts.append(Part(position, filename, sha1))
    return tuple(parts)
