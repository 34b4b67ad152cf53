"""Identified visitors (contract §9): the company of an email, free mail and disposable ignored."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from abmhub.website.identity import company_domain, is_personal_domain


@pytest.mark.parametrize(
    ("email", "domain"),
    [
        ("jane@acme.com", "acme.com"),
        ("  Jane.Doe@ACME.com \n", "acme.com"),
        ("jane@www.acme.com", "acme.com"),
        ("jane@acme.com.", "acme.com"),
        ("jane@eu.acme.co.uk", "eu.acme.co.uk"),
        ("jane+abm@acme.io", "acme.io"),
        ("jane@münchen.de", "xn--mnchen-3ya.de"),
        ('"jane@home"@acme.com', "acme.com"),
        # A company named like a free-mail provider is still a company.
        ("jane@gmailing.com", "gmailing.com"),
        ("jane@notgmail.com", "notgmail.com"),
    ],
)
def test_a_company_email_gives_its_domain(email: str, domain: str) -> None:
    assert company_domain(email) == domain


@pytest.mark.parametrize(
    "email",
    [
        "bob@gmail.com",
        "bob@googlemail.com",
        "bob@outlook.com",
        "bob@hotmail.com",
        "bob@hotmail.co.uk",
        "bob@live.com",
        "bob@yahoo.com",
        "bob@yahoo.co.uk",
        "bob@yahoo.de",
        "bob@yahoo.co.jp",
        "bob@icloud.com",
        "bob@me.com",
        "bob@proton.me",
        "bob@protonmail.com",
        "bob@pm.me",
        "bob@gmx.de",
        "bob@gmx.net",
        "bob@gmx.at",
        "bob@gmx.ch",
        "bob@web.de",
        "bob@t-online.de",
        "bob@mail.ru",
        "bob@yandex.ru",
        "bob@qq.com",
        "bob@163.com",
        "bob@naver.com",
        "bob@aol.com",
        "Bob@GMAIL.COM",
        "bob@www.gmail.com",
        "bob@eu.gmx.net",
    ],
)
def test_free_mail_names_no_company(email: str) -> None:
    assert company_domain(email) is None


@pytest.mark.parametrize("email", ["x@mailinator.com", "x@10minutemail.com", "x@guerrillamail.com", "x@yopmail.com"])
def test_disposable_mail_names_no_company(email: str) -> None:
    assert company_domain(email) is None


@pytest.mark.parametrize(
    "email",
    [
        "",
        "   ",
        "acme.com",
        "@acme.com",
        "jane@",
        "jane@acme",
        "jane@localhost",
        "jane@1.2.3.4",
        "jane@[1.2.3.4]",
        "jane@acme.com/pricing",
        "jane@acme.com:25",
        "jane@acme.com?x=1",
        "jane@acme..com",
        "jane@-acme.com",
        "jane doe@acme.com",
        "jane@acme com",
        "jane@@acme.com",
        "a@b@acme.com",
        "jane@https://acme.com",
        "x" * 65 + "@acme.com",
        "jane@" + "a" * 250 + ".com",
    ],
)
def test_what_is_not_an_email_names_no_company(email: str) -> None:
    assert company_domain(email) is None


def test_personal_domains_include_their_subdomains_but_not_their_neighbours() -> None:
    assert is_personal_domain("gmail.com")
    assert is_personal_domain("mx.gmail.com")
    assert not is_personal_domain("gmail.acme.com")
    assert not is_personal_domain("com")
    assert not is_personal_domain("acme.com")


@given(st.text(max_size=80))
def test_any_text_gives_none_or_a_normalised_domain(text: str) -> None:
    domain = company_domain(text)
    assert domain is None or (domain == domain.lower() and "@" in text and not is_personal_domain(domain))
