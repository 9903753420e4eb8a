"""The people behind simulated orders and pixel purchases: name, e-mail, phone and a postal
address, shaped as a shop's API returns them (Shopify's order `email`, `contact_email`, `phone`,
`customer{...}`, `billing_address{...}`, `shipping_address{...}`). Deterministic per seed: a
returning customer is the same person on every order, a guest is one person per order.

None of it may reach the warehouse in clear; `personal_values` lists what a scan looks for.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

FIRST_NAMES = ("Marisol", "Thaddeus", "Ingrid", "Oluwaseun", "Perpetua", "Leopold", "Saoirse", "Bartholomew",
               "Yevgenia", "Cornelius", "Anouk", "Fitzwilliam")
LAST_NAMES = ("Abernathy-Voss", "Castellanos", "Lindqvist", "Nakashima", "Villanueva", "Kowalczyk", "Thorsby",
              "Delacroix-Webb", "Fairweather", "Whitlock-Oduya", "Ashcombe", "Quennell")
STREETS = ("Juniper Hollow Rd", "Marigold Terrace", "Old Quarry Lane", "Wexford Crescent", "Bramblewood Ave",
           "Sycamore Bend", "Harrowgate Street", "Linden Parkway")
CITIES = (("Portland", "Oregon", "OR", "972"), ("Asheville", "North Carolina", "NC", "288"),
          ("Duluth", "Minnesota", "MN", "558"), ("Savannah", "Georgia", "GA", "314"))
PHONE_SHAPES = ("+1 {a}-555-{b}", "({a}) 555-{b}", "+1{a}555{b}", "1-{a}-555-{b}")


@dataclass(frozen=True)
class Buyer:
    first_name: str
    last_name: str
    email: str
    phone: str
    address1: str
    address2: str | None
    city: str
    province: str
    province_code: str
    zip: str
    second_address1: str  # where a gift is shipped (the shipping address differs from billing)

    @property
    def name(self) -> str:
        return f"{self.first_name} {self.last_name}"


def buyer(seed: int, tenant_id: str, customer_id: str | None, event_id: str) -> Buyer:
    """The person behind one order: the same for every order of a customer of a tenant."""
    who = f"customer:{customer_id}" if customer_id else f"guest:{event_id}"
    digest = hashlib.sha256(f"{seed}:{tenant_id}:{who}".encode()).digest()
    first, last = FIRST_NAMES[digest[0] % len(FIRST_NAMES)], LAST_NAMES[digest[1] % len(LAST_NAMES)]
    city, province, code, zip_prefix = CITIES[digest[2] % len(CITIES)]
    number = int.from_bytes(digest[3:5]) % 9000 + 100
    local = f"{first}.{last}".lower().replace("-", "")
    area, line = 200 + digest[5] % 700, 100 + int.from_bytes(digest[6:8]) % 900
    return Buyer(
        first_name=first, last_name=last, email=f"{local}{number % 97}@example.com",
        phone=PHONE_SHAPES[digest[8] % len(PHONE_SHAPES)].format(a=area, b=f"0{line}"),
        address1=f"{number} {STREETS[digest[9] % len(STREETS)]}",
        address2=f"Apt {digest[10] % 40 + 1}" if digest[10] % 3 == 0 else None,
        city=city, province=province, province_code=code, zip=f"{zip_prefix}{digest[11] % 90 + 10}",
        second_address1=f"{number + 17} {STREETS[digest[12] % len(STREETS)]}",
    )


def _address(person: Buyer, address1: str) -> dict[str, Any]:
    return {"first_name": person.first_name, "last_name": person.last_name, "name": person.name,
            "address1": address1, "address2": person.address2, "city": person.city, "province": person.province,
            "province_code": person.province_code, "zip": person.zip, "country": "United States",
            "country_code": "US", "phone": person.phone, "company": None}


def order_contact(person: Buyer, customer_id: str | None) -> dict[str, Any]:
    """The personal fields of a shop order (merged into the order record)."""
    customer = None
    if customer_id:
        customer = {"id": int(customer_id), "email": person.email, "first_name": person.first_name,
                    "last_name": person.last_name, "phone": person.phone, "verified_email": True,
                    "default_address": _address(person, person.address1)}
    return {"email": person.email, "contact_email": person.email, "phone": person.phone, "customer": customer,
            "billing_address": _address(person, person.address1),
            "shipping_address": _address(person, person.second_address1),
            "note": f"Please leave it with {person.first_name} at {person.address1}"}


def pixel_contact(person: Buyer) -> dict[str, Any]:
    """The buyer's details a pixel sends with a purchase or lead (advanced matching)."""
    return {"user_data": {"email": person.email, "phone": person.phone, "first_name": person.first_name,
                          "last_name": person.last_name, "city": person.city, "zip": person.zip}}


def personal_values(person: Buyer) -> list[str]:
    """What of this person must never be found in the warehouse or a report: e-mail, phone (as
    written and as digits), full name, surname, street addresses."""
    digits = "".join(c for c in person.phone if c.isdigit())
    return [person.email, person.phone, digits, person.name, person.last_name, person.address1,
            person.second_address1]
