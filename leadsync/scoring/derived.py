"""Derived profile fields rules may name (DESIGN.md §2): email_domain, email_free, seniority.

Seniority follows the EN/JA table: English terms match as whole words, case-insensitively;
Japanese terms match as substrings; the most senior match wins. Titles repeat a lot across a
customer base, so `derive_seniority` is cached: the regexes run once per distinct title.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Final, Literal

Seniority = Literal["executive", "vp", "director", "manager", "staff", "unknown"]

#: Built-in free / consumer mail domains; a rules file may add more (`free_email_domains`).
FREE_EMAIL_DOMAINS: Final[frozenset[str]] = frozenset(
    {
        "gmail.com", "googlemail.com", "yahoo.com", "yahoo.co.jp", "ymail.com", "outlook.com",
        "outlook.jp", "hotmail.com", "hotmail.co.jp", "live.com", "live.jp", "msn.com",
        "icloud.com", "me.com", "mac.com", "aol.com", "proton.me", "protonmail.com",
        "gmx.com", "gmx.de", "mail.com", "yandex.com", "zoho.com", "qq.com", "163.com",
        "naver.com", "docomo.ne.jp", "ezweb.ne.jp", "au.com", "softbank.ne.jp",
        "i.softbank.jp", "nifty.com", "biglobe.ne.jp", "ocn.ne.jp", "so-net.ne.jp",
        "excite.co.jp", "goo.jp",
    }
)

# English: whole words, case-insensitive. "President" counts only when not "Vice President"
# (with a space or a hyphen). SVP/EVP are spelled-out forms of VP and are treated as vp.
_EN_EXECUTIVE = re.compile(
    r"\b(?:ceo|cto|cfo|coo|cmo|cio|chief|founder|co-founder)\b"
    r"|(?<!vice )(?<!vice-)\bpresident\b",
    re.IGNORECASE,
)
_EN_VP = re.compile(r"\b(?:vp|svp|evp|vice[ -]president)\b", re.IGNORECASE)
_EN_DIRECTOR = re.compile(r"\b(?:director|head\s+of)\b", re.IGNORECASE)
_EN_MANAGER = re.compile(r"\b(?:manager|team\s+lead)\b", re.IGNORECASE)

# Japanese: substrings. 部長 is director except inside 部長代理 / 副部長 (manager);
# 本部長 and 事業部長 contain 部長 but are vp, which outranks director anyway.
_JA_EXECUTIVE = re.compile(r"社長|取締役|役員")  # 執行役員 contains 役員
_JA_VP = re.compile(r"本部長|事業部長")
_JA_DIRECTOR = re.compile(r"(?<!副)部長(?!代理)")
_JA_MANAGER = re.compile(r"課長|マネージャー|部長代理|副部長|係長")

_LEVELS: Final[tuple[tuple[Seniority, re.Pattern[str], re.Pattern[str]], ...]] = (
    ("executive", _EN_EXECUTIVE, _JA_EXECUTIVE),
    ("vp", _EN_VP, _JA_VP),
    ("director", _EN_DIRECTOR, _JA_DIRECTOR),
    ("manager", _EN_MANAGER, _JA_MANAGER),
)


@lru_cache(maxsize=8192)
def derive_seniority(title: str | None) -> Seniority:
    """Seniority level of a job title per the DESIGN.md §2 table (most senior match wins)."""
    if title is None or not title.strip():
        return "unknown"
    for level, english, japanese in _LEVELS:
        if english.search(title) or japanese.search(title):
            return level
    return "staff"


def email_domain(email: str | None) -> str | None:
    """The part after the last @, lower-cased; None when there is no usable domain."""
    if not email:
        return None
    _, at, domain = email.strip().rpartition("@")
    domain = domain.strip().lower()
    return domain if at and domain else None


def is_free_email(domain: str | None, free_domains: frozenset[str]) -> bool | None:
    """True when `domain` is a consumer mail domain; None when the profile has no email domain."""
    if domain is None:
        return None
    return domain in free_domains
