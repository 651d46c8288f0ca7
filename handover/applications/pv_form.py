"""The rules of the form "Photovoltaikanlage anmelden", checked again on the server.

The page's script (widget/portal/pv-form.js) checks the same rules with the
same German messages, so a citizen sees them before sending; here they hold
against any client. Every message tells the citizen what to do (GOV.UK's
pattern) and is keyed by the field's `name`, so the page can put it into its
error summary and beside the field.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

from handover.applications.multipart import Form
from handover.applications.uploads import (
    MAX_UPLOAD_BYTES,
    MediaType,
    name_fits,
    safe_filename,
    sniff,
)
from handover.cases.api import EMAIL, POSTAL_CODE

# Field names in the order the form asks for them (errors are reported in this order).
FIELDS = (
    "first_name", "last_name", "email", "phone", "street", "postal_code", "city",
    "installation_type", "power_kwp", "listed_building", "grid_operator", "upload", "confirm",
)  # fmt: skip
INSTALLATION_TYPES = ("dach", "freiflaeche")
LISTED_BUILDING = ("ja", "nein")
GRID_OPERATORS = ("stadtwerke-musterstadt", "musterland-netz", "anderer", "unbekannt")
MAX_POWER_KWP = Decimal(1000)
UPLOAD_FIELD = "upload"

PHONE = re.compile(r"\+?[0-9 ()/-]{6,30}")
NUMBER = re.compile(r"-?\d+(?:[.,]\d+)?")

REQUIRED = {
    "first_name": "Geben Sie Ihren Vornamen ein.",
    "last_name": "Geben Sie Ihren Nachnamen ein.",
    "email": "Geben Sie Ihre E-Mail-Adresse ein.",
    "street": "Geben Sie Straße und Hausnummer der Anlage ein.",
    "postal_code": "Geben Sie die Postleitzahl der Anlage ein.",
    "city": "Geben Sie den Ort der Anlage ein.",
    "installation_type": "Wählen Sie aus, ob die Anlage auf dem Dach oder auf einer Freifläche "
    "steht.",
    "power_kwp": "Geben Sie die Leistung der Anlage in kWp ein.",
    "listed_building": "Wählen Sie aus, ob das Gebäude unter Denkmalschutz steht.",
    "grid_operator": "Wählen Sie Ihren Netzbetreiber aus.",
    "confirm": "Bestätigen Sie, dass Ihre Angaben richtig und vollständig sind.",
}
_MAX_LENGTH = {"first_name": 100, "last_name": 100, "email": 254, "street": 200, "city": 100}
_TOO_LONG = "Dieser Eintrag darf höchstens {n} Zeichen lang sein."
MESSAGES = {
    "email": "Geben Sie eine E-Mail-Adresse im richtigen Format ein, zum Beispiel "
    "name@beispiel.de.",
    "phone": "Geben Sie eine Telefonnummer nur mit Ziffern, Leerzeichen und den Zeichen "
    "+ ( ) / - ein, zum Beispiel 01234 567890.",
    "postal_code": "Die Postleitzahl hat genau fünf Ziffern, zum Beispiel 12345.",
    "power_kwp.number": "Geben Sie die Leistung als Zahl ein, zum Beispiel 9,8.",
    "power_kwp.positive": "Die Leistung muss größer als 0 kWp sein.",
    "power_kwp.max": "Die Leistung darf höchstens 1000 kWp betragen.",
    "power_kwp.decimals": "Geben Sie die Leistung mit höchstens zwei Nachkommastellen ein.",
    "choice": "Wählen Sie eine der angebotenen Möglichkeiten aus.",
    "upload.type": "Die Datei muss ein PDF, ein PNG oder ein JPEG sein.",
    "upload.mismatch": "Der Inhalt der Datei passt nicht zu ihrem Namen. Wählen Sie ein "
    "PDF (.pdf), ein PNG (.png) oder ein JPEG (.jpg).",
    "upload.size": "Die Datei darf höchstens 5 MB groß sein.",
    "upload.empty": "Die ausgewählte Datei ist leer.",
}
_CHOICES = {
    "installation_type": INSTALLATION_TYPES,
    "listed_building": LISTED_BUILDING,
    "grid_operator": GRID_OPERATORS,
}


@dataclass(frozen=True, slots=True)
class Upload:
    """A checked upload: its type found by its bytes, the browser's name cleaned."""

    filename: str
    media_type: MediaType
    data: bytes


@dataclass(frozen=True, slots=True)
class Checked:
    """The form's values as they will be stored, or the messages of every invalid field."""

    values: dict[str, str]
    upload: Upload | None
    errors: dict[str, str]

    @property
    def upload_too_large(self) -> bool:
        return self.errors.get(UPLOAD_FIELD) == MESSAGES["upload.size"]


def power_error(text: str) -> str | None:
    """Why `text` is not an output in kWp (comma or point for decimals), or None."""
    if not NUMBER.fullmatch(text):
        return MESSAGES["power_kwp.number"]
    value = Decimal(text.replace(",", "."))
    if value <= 0:
        return MESSAGES["power_kwp.positive"]
    if value > MAX_POWER_KWP:
        return MESSAGES["power_kwp.max"]
    exponent = value.normalize().as_tuple().exponent  # 9,80 has one decimal, as 9,8 has
    if isinstance(exponent, int) and exponent < -2:
        return MESSAGES["power_kwp.decimals"]
    return None


def _canonical_power(text: str) -> str:
    value = Decimal(text.replace(",", ".")).normalize()
    return format(value, "f")


def _field_error(name: str, value: str) -> str | None:
    if not value:
        return REQUIRED.get(name)
    limit = _MAX_LENGTH.get(name)
    if limit is not None and len(value) > limit:
        return _TOO_LONG.format(n=limit)
    if name == "email" and not EMAIL.fullmatch(value):
        return MESSAGES["email"]
    if name == "phone" and not PHONE.fullmatch(value):
        return MESSAGES["phone"]
    if name == "postal_code" and not POSTAL_CODE.fullmatch(value):
        return MESSAGES["postal_code"]
    if name == "power_kwp":
        return power_error(value)
    if name in _CHOICES and value not in _CHOICES[name]:
        return MESSAGES["choice"]
    if name == "confirm" and value != "ja":
        return REQUIRED["confirm"]
    return None


def _checked_upload(form: Form) -> tuple[Upload | None, str | None]:
    given = form.files.get(UPLOAD_FIELD)
    if given is None or (not given.filename and not given.data):
        return None, None  # optional: no file chosen (browsers send an empty part)
    if len(given.data) > MAX_UPLOAD_BYTES:
        return None, MESSAGES["upload.size"]
    if not given.data:
        return None, MESSAGES["upload.empty"]
    media_type = sniff(given.data)
    if media_type is None:
        return None, MESSAGES["upload.type"]
    filename = safe_filename(given.filename)
    if not name_fits(filename, media_type):
        return None, MESSAGES["upload.mismatch"]
    return Upload(filename, media_type, given.data), None


def check(form: Form) -> Checked:
    """Every field's value trimmed and checked; unknown fields are ignored."""
    values: dict[str, str] = {}
    errors: dict[str, str] = {}
    for name in FIELDS:
        if name == UPLOAD_FIELD:
            continue
        value = form.fields.get(name, "").strip()
        error = _field_error(name, value)
        if error:
            errors[name] = error
        elif value and name != "confirm":  # always "ja" once valid: nothing to keep
            values[name] = _canonical_power(value) if name == "power_kwp" else value
    upload, upload_error = _checked_upload(form)
    if upload_error:
        errors[UPLOAD_FIELD] = upload_error
    ordered = {name: errors[name] for name in FIELDS if name in errors}
    return Checked(values, upload, ordered)
