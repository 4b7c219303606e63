"""Word pools for the data generator: names (Japanese with romaji, English), titles by seniority,
companies, industries, free-mail domains and the pages and forms people interact with."""

from __future__ import annotations

import hashlib

JP_LAST = [
    ("山田", "yamada"),
    ("佐藤", "sato"),
    ("鈴木", "suzuki"),
    ("高橋", "takahashi"),
    ("田中", "tanaka"),
    ("伊藤", "ito"),
    ("渡辺", "watanabe"),
    ("中村", "nakamura"),
    ("小林", "kobayashi"),
    ("加藤", "kato"),
    ("吉田", "yoshida"),
    ("山本", "yamamoto"),
    ("松本", "matsumoto"),
    ("井上", "inoue"),
    ("木村", "kimura"),
    ("林", "hayashi"),
    ("清水", "shimizu"),
    ("山口", "yamaguchi"),
    ("森", "mori"),
    ("池田", "ikeda"),
]
JP_FIRST = [
    ("太郎", "taro"),
    ("花子", "hanako"),
    ("健一", "kenichi"),
    ("美咲", "misaki"),
    ("大輔", "daisuke"),
    ("陽子", "yoko"),
    ("翔太", "shota"),
    ("由美", "yumi"),
    ("拓也", "takuya"),
    ("恵", "megumi"),
    ("直樹", "naoki"),
    ("彩", "aya"),
    ("誠", "makoto"),
    ("真由美", "mayumi"),
    ("亮", "ryo"),
    ("愛", "ai"),
]
EN_FIRST = [
    "James",
    "Mary",
    "John",
    "Patricia",
    "Robert",
    "Jennifer",
    "Michael",
    "Linda",
    "David",
    "Elizabeth",
    "Daniel",
    "Sarah",
    "Chris",
    "Karen",
    "Alex",
    "Emily",
    "Priya",
    "Wei",
    "Carlos",
    "Fatima",
]
EN_LAST = [
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Martinez",
    "Lopez",
    "Wilson",
    "Anderson",
    "Taylor",
    "Thomas",
    "Moore",
    "Lee",
    "Patel",
    "Chen",
    "Nguyen",
    "O'Brien",
]

# seniority -> titles (Japanese, English); DESIGN.md §2 derives seniority from these words
TITLES: dict[str, tuple[list[str], list[str]]] = {
    "executive": (
        ["代表取締役社長", "取締役", "執行役員", "社長"],
        ["CEO", "CTO", "CFO", "Founder", "President", "Chief Marketing Officer"],
    ),
    "vp": (
        ["営業本部長", "事業部長", "マーケティング本部長"],
        ["VP Sales", "Vice President of Marketing", "VP of Engineering"],
    ),
    "director": (
        ["営業部長", "情報システム部長", "マーケティング部長"],
        ["Director of IT", "Head of Marketing", "Sales Director", "Head of Operations"],
    ),
    "manager": (
        ["部長代理", "副部長", "課長", "係長", "マネージャー"],
        ["Marketing Manager", "Team Lead", "IT Manager", "Sales Manager"],
    ),
    "staff": (
        ["担当", "主任", "エンジニア", "営業担当"],
        ["Engineer", "Sales Representative", "Analyst", "Marketing Specialist", "Intern"],
    ),
    "unknown": ([""], [""]),
}
SENIORITY_WEIGHTS = {
    "executive": 5,
    "vp": 7,
    "director": 13,
    "manager": 25,
    "staff": 40,
    "unknown": 10,
}
SENIORITY_FIT = {
    "executive": 1.0,
    "vp": 0.9,
    "director": 0.8,
    "manager": 0.5,
    "staff": 0.2,
    "unknown": 0.1,
}

COMPANY_JP = ["東和", "大和", "日本", "富士", "三協", "中央", "北斗", "青葉", "桜", "光"]
COMPANY_JP_SUFFIX = ["製作所", "電機", "商事", "システムズ", "工業", "ソリューションズ", "物流"]
COMPANY_JP_ROMAJI = {
    "東和": "towa",
    "大和": "yamato",
    "日本": "nihon",
    "富士": "fuji",
    "三協": "sankyo",
    "中央": "chuo",
    "北斗": "hokuto",
    "青葉": "aoba",
    "桜": "sakura",
    "光": "hikari",
}
COMPANY_EN = [
    "Acme",
    "Globex",
    "Initech",
    "Umbrella",
    "Stark",
    "Wayne",
    "Hooli",
    "Vandelay",
    "Soylent",
    "Cyberdyne",
    "Wonka",
    "Tyrell",
]
COMPANY_EN_SUFFIX = ["Robotics", "Analytics", "Logistics", "Health", "Software", "Foods", "Energy"]
INDUSTRIES = [
    "manufacturing",
    "software",
    "financial_services",
    "retail",
    "healthcare",
    "logistics",
    "education",
    "government",
    "construction",
    "media",
]
TARGET_INDUSTRIES = frozenset({"manufacturing", "software", "financial_services", "logistics"})

FREE_MAIL = ["gmail.com", "yahoo.co.jp", "outlook.com", "icloud.com", "docomo.ne.jp"]
SOURCES = [
    "ORGANIC_SEARCH",
    "PAID_SEARCH",
    "EMAIL_MARKETING",
    "SOCIAL_MEDIA",
    "REFERRALS",
    "OTHER_CAMPAIGNS",
    "DIRECT_TRAFFIC",
    "OFFLINE",
]
SF_SOURCES = {
    "ORGANIC_SEARCH": "Web",
    "PAID_SEARCH": "Advertisement",
    "EMAIL_MARKETING": "Email",
    "SOCIAL_MEDIA": "Social",
    "REFERRALS": "Partner Referral",
    "OTHER_CAMPAIGNS": "Webinar",
    "DIRECT_TRAFFIC": "Web",
    "OFFLINE": "Trade Show",
}

SITE = "https://www.example.com"
BLOG_PAGES = [
    f"{SITE}/blog/{slug}"
    for slug in (
        "lead-scoring-101",
        "mql-vs-sql",
        "sla-between-sales-and-marketing",
        "crm-hygiene",
        "intent-data",
        "abm-basics",
    )
]
PRODUCT_PAGES = [f"{SITE}/product/{slug}" for slug in ("overview", "integrations", "security")]
PRICING_PAGE = f"{SITE}/pricing"
DEMO_PAGE = f"{SITE}/demo"
CAREERS_PAGE = f"{SITE}/careers"
CASE_STUDY_FORMS = ["case-study-acme", "case-study-towa", "case-study-globex"]
WEBINARS = [
    ("wb-2026-06", "リードスコアリング入門ウェビナー"),
    ("wb-2026-08", "SLA design webinar"),
    ("wb-2026-10", "Marketing ops summit (online)"),
]
EMAIL_CAMPAIGNS = [
    "em-newsletter-06",
    "em-newsletter-07",
    "em-newsletter-08",
    "em-newsletter-09",
    "em-newsletter-10",
    "em-product-launch",
]

PREFECTURES = ["東京都", "神奈川県", "大阪府", "愛知県", "福岡県", "北海道", "京都府", "宮城県"]
US_STATES = ["CA", "NY", "TX", "WA", "MA", "IL"]


def region_of(country: str, domain: str) -> str:
    """A company's prefecture or state, from its domain's hash (no draw from the seed's RNG, so
    every other seeded value stays as it was)."""
    names = PREFECTURES if country == "JP" else US_STATES
    digest = int.from_bytes(hashlib.blake2b(domain.encode(), digest_size=4).digest(), "big")
    return names[digest % len(names)]

