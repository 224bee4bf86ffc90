"""What the benchmark's meetings are named after and who moderates them: a corpus of
words with Zipf weights, project and customer code names, about 20,000 people."""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass

# --- the words meetings are named with ---------------------------------------------------

KINDS = (
    "weekly sync", "standup", "daily standup", "review", "sprint planning", "retro", "1:1",
    "demo", "kickoff", "workshop", "all-hands", "office hours", "town hall", "training",
    "onboarding", "interview", "brainstorm", "status update", "steering committee",
    "design review", "code review", "roadmap review", "budget review", "board meeting",
    "check-in", "deep dive", "post-mortem", "readout", "offsite prep", "lunch and learn",
    "Q&A", "webinar", "briefing", "handover", "escalation call", "customer call",
    "sales call", "pipeline review", "forecast call", "hiring committee", "performance review",
    "strategy session", "architecture board", "incident review", "release planning",
    "go/no-go", "coffee chat", "AMA", "fireside chat", "planning poker", "refinement",
    "grooming", "jour fixe", "alignment", "sync", "catch-up", "huddle", "summit",
    "quarterly business review", "monthly report", "weekly report", "tech talk",
)  # fmt: skip
TEAMS = (
    "Platform", "Payments", "Identity", "Security", "Finance", "Legal", "People Ops",
    "Recruiting", "Sales EMEA", "Sales APAC", "Sales Americas", "Marketing", "Brand", "Growth",
    "Data", "Analytics", "Machine Learning", "Infrastructure", "SRE", "Networking", "Storage",
    "Mobile", "iOS", "Android", "Web", "Frontend", "Backend", "QA", "Support",
    "Customer Success", "Procurement", "Facilities", "IT", "Compliance", "Risk", "Audit",
    "Treasury", "Tax", "Product", "Design", "UX Research", "Documentation", "Localization",
    "Partnerships", "Channel", "Operations", "Logistics", "Supply Chain", "Manufacturing",
    "Quality", "R&D", "Research", "Hardware", "Firmware", "Billing", "Search", "Messaging",
    "Video", "Audio", "Accessibility", "Developer Relations", "Community", "Events",
    "Communications", "Executive", "Works Council", "Health and Safety", "Sustainability",
    "Privacy", "Architecture", "Release Engineering", "Build", "Tooling", "Observability",
    "Databases", "Cloud", "Edge", "Integrations", "API", "Controlling", "Accounting",
)  # fmt: skip
TOPICS = (
    "budget", "roadmap", "hiring", "release", "incident", "migration", "pricing",
    "compliance", "GDPR", "renewal", "contract", "offboarding", "vendor", "security audit",
    "penetration test", "capacity", "cost", "forecast", "OKR", "KPI", "churn", "retention",
    "launch", "campaign", "conference", "trade fair", "certification", "accessibility",
    "performance", "latency", "uptime", "backup", "disaster recovery", "data retention",
    "tender", "RFP", "invoice", "payroll", "benefits", "relocation", "visa", "office move",
    "floor plan", "parking", "canteen", "IT refresh", "laptop rollout", "SSO", "LDAP", "VPN",
    "firewall", "patching", "upgrade", "deprecation", "API v2", "mobile app",
    "website relaunch", "newsletter", "press release", "annual report", "audit findings",
    "tax filing", "year-end close", "month-end close", "headcount", "reorg", "strategy",
    "vision", "values", "diversity", "wellbeing", "mentoring", "internship",
    "graduate program", "hackathon", "innovation", "patents", "licensing", "open source",
    "partnership", "integration", "customer feedback", "NPS", "support backlog", "SLA",
    "escalations", "quality gate", "test plan", "regression", "beta", "pilot", "rollout",
    "go-live", "cutover", "data migration", "schema change", "calendar", "recording",
    "streaming", "transcoding", "load test", "benchmark", "observability", "on-call",
    "postmortem actions", "runbook", "SOC 2", "ISO 27001", "threat model", "key rotation",
    "certificates", "DNS", "CDN", "Kubernetes", "Terraform", "cost savings", "cloud bill",
    "licences", "seat planning", "travel policy", "expenses", "offsite", "team event",
    "summer party", "holiday planning", "shift plan", "warehouse", "shipping", "returns",
    "inventory", "suppliers", "quality audit", "recall", "safety drill", "fire drill",
    "first aid", "sustainability report", "carbon", "energy", "solar", "fleet", "EV charging",
    "translation", "glossary", "style guide", "brand refresh", "logo", "website", "SEO",
    "social media", "influencers", "events calendar", "customer advisory board",
    "user research", "usability test", "prototype", "wireframes", "design system",
    "dark mode", "onboarding flow", "checkout", "subscriptions", "refunds", "fraud",
    "chargebacks", "KYC", "AML", "sanctions", "export control", "works agreement",
)  # fmt: skip
FIRST_NAMES = (
    "anna", "ben", "carla", "david", "eva", "felix", "greta", "hannes", "ida", "jonas",
    "katrin", "lukas", "mara", "nico", "olga", "paul", "quentin", "rosa", "sven", "tina",
    "ulrich", "vera", "walter", "xenia", "yusuf", "zoe", "amir", "bianca", "cem", "dana",
    "emil", "fatima", "georg", "helga", "ivan", "julia", "kai", "lena", "max", "nina",
    "oskar", "petra", "ralf", "sara", "timo", "ute", "viktor", "wanda", "yara", "aaron",
    "alice", "bob", "chen", "diego", "elena", "farid", "gina", "hiro", "ines", "jamal",
    "kim", "liam", "mei", "noah", "omar", "priya", "raj", "sofia", "tariq", "uma", "valentin",
    "wei", "ximena", "yuki", "zara", "adele", "bruno", "clara", "dirk", "elif", "frida",
    "gustav", "hanna", "igor", "jana", "karl", "lotte", "moritz", "nele", "otto", "pia",
    "rene", "selma", "theo", "ulla", "vincent", "wilma", "alma", "bernd", "doris", "erik",
    "fiona", "gerd", "heidi", "ingo", "jasper", "karin", "leon", "marta", "nils", "ole",
    "pauline", "robin", "sabine", "tobias", "uwe", "vanessa", "yannick", "zora",
)  # fmt: skip
FAMILY_NAMES = (
    "schmidt", "mueller", "schneider", "fischer", "weber", "meyer", "wagner", "becker",
    "schulz", "hoffmann", "koch", "richter", "klein", "wolf", "schroeder", "neumann",
    "schwarz", "braun", "hofmann", "zimmermann", "hartmann", "krueger", "lange", "werner",
    "krause", "lehmann", "koehler", "maier", "herrmann", "walter", "koenig", "mayer", "huber",
    "kaiser", "fuchs", "peters", "lang", "scholz", "moeller", "weiss", "jung", "hahn",
    "schubert", "vogel", "friedrich", "keller", "guenther", "frank", "berger", "winkler",
    "roth", "beck", "lorenz", "baumann", "franke", "albrecht", "schuster", "simon", "ludwig",
    "boehm", "winter", "kraus", "martin", "schumacher", "kraemer", "vogt", "stein", "jaeger",
    "otto", "sommer", "gross", "seidel", "heinrich", "brandt", "haas", "schreiber", "graf",
    "schulte", "dietrich", "ziegler", "kuhn", "kuehn", "pohl", "engel", "horn", "busch",
    "bergmann", "thomas", "voigt", "sauer", "arnold", "wolff", "pfeiffer", "smith",
    "johnson", "williams", "brown", "jones", "garcia", "miller", "davis", "rodriguez",
    "martinez", "hernandez", "lopez", "gonzalez", "wilson", "anderson", "taylor", "moore",
    "jackson", "lee", "perez", "thompson", "white", "harris", "sanchez", "clark", "ramirez",
    "lewis", "robinson", "walker", "young", "allen", "king", "wright", "scott", "torres",
    "nguyen", "hill", "flores", "green", "adams", "nelson", "baker", "hall", "rivera",
    "campbell", "mitchell", "carter", "roberts", "tanaka", "suzuki", "sato", "watanabe",
    "ito", "yamamoto", "nakamura", "kobayashi", "kato", "yoshida", "yamada", "sasaki",
    "kowalski", "nowak", "wisniewski", "dubois", "laurent", "lefebvre", "moreau", "rossi",
    "russo", "ferrari", "esposito", "bianchi", "romano", "colombo", "ricci", "marino",
    "greco", "bruno", "gallo", "conti", "devries", "jansen", "bakker", "visser", "smit",
    "meijer", "mulder", "bos", "vos", "peeters", "janssens", "maes", "jacobs", "mertens",
    "willems", "claes", "goossens", "wouters", "silva", "santos", "ferreira", "pereira",
    "oliveira", "costa", "rodrigues", "almeida", "yilmaz", "kaya", "demir", "sahin",
    "celik", "yildiz", "aydin", "ozturk", "arslan", "dogan", "kumar", "sharma", "singh",
    "patel", "gupta", "khan", "ali", "ahmed", "hussain", "chen", "wang", "li", "zhang", "liu",
)  # fmt: skip
_ONSETS = (
    "b", "br", "c", "ch", "d", "dr", "f", "fl", "g", "gr", "h", "j", "k", "kl", "l", "m", "n",
    "p", "pr", "qu", "r", "s", "sh", "sk", "st", "t", "tr", "v", "w", "z",
)  # fmt: skip
_VOWELS = ("a", "e", "i", "o", "u", "a", "e", "o", "ai", "ea", "io", "ou", "y")
_CODAS = ("", "", "", "n", "r", "s", "l", "x", "m", "nd", "rt", "st", "th", "k")
CODENAMES = 2_600  # project and customer names: most of the vocabulary, each rare
WORD = re.compile(r"[a-z0-9]+")


def _zipf(items: Sequence[str], rng: random.Random) -> tuple[list[str], list[float]]:
    """The items in a random order with Zipf weights (the first is the most common)."""
    order = list(items)
    rng.shuffle(order)
    total, cumulative = 0.0, []
    for rank in range(len(order)):
        total += 1.0 / (rank + 1)
        cumulative.append(total)
    return order, cumulative


@dataclass
class Corpus:
    """What meetings are named after and who moderates them."""

    kinds: tuple[list[str], list[float]]
    teams: tuple[list[str], list[float]]
    topics: tuple[list[str], list[float]]
    codenames: list[str]
    people: list[str]
    people_weights: list[float]

    def words(self) -> list[str]:
        """The distinct lower-case words of at least 3 characters that names contain."""
        found: set[str] = set()
        for phrase in (*self.kinds[0], *self.teams[0], *self.topics[0], *self.codenames):
            found.update(w for w in WORD.findall(phrase.lower()) if len(w) >= 3)
        return sorted(found)


def make_corpus(seed: int) -> Corpus:
    rng = random.Random(seed)
    known = {w for p in (*KINDS, *TEAMS, *TOPICS) for w in WORD.findall(p.lower())}
    codenames: set[str] = set()
    while len(codenames) < CODENAMES:
        syllables = [rng.choice(_ONSETS) + rng.choice(_VOWELS) for _ in range(rng.randint(2, 3))]
        word = ("".join(syllables) + rng.choice(_CODAS)).capitalize()
        if word.lower() not in known:
            codenames.add(word)
    pairs = [(f, s) for f in FIRST_NAMES for s in FAMILY_NAMES]
    rng.shuffle(pairs)
    people = [f"{f}.{s}" for f, s in pairs[:20_000]]
    weights = [rng.lognormvariate(0.0, 1.0) for _ in people]
    cumulative, total = [], 0.0
    for w in weights:
        total += w
        cumulative.append(total)
    return Corpus(
        kinds=_zipf(KINDS, rng),
        teams=_zipf(TEAMS, rng),
        topics=_zipf(TOPICS, rng),
        codenames=sorted(codenames),
        people=people,
        people_weights=cumulative,
    )


def _pick(rng: random.Random, items: tuple[list[str], list[float]]) -> str:
    return rng.choices(items[0], cum_weights=items[1])[0]


def meeting_name(rng: random.Random, corpus: Corpus) -> str:
    r = rng.random()
    kind = _pick(rng, corpus.kinds)
    if r < 0.22:
        return f"{_pick(rng, corpus.teams)} {kind}"
    if r < 0.36:
        return f"{_pick(rng, corpus.teams)} {_pick(rng, corpus.topics)} {kind}"
    if r < 0.50:
        topic = _pick(rng, corpus.topics)
        return f"{topic[0].upper()}{topic[1:]} {kind}"
    if r < 0.68:
        return f"Project {rng.choice(corpus.codenames)} {kind}"
    if r < 0.82:
        return f"{kind[0].upper()}{kind[1:]} with {rng.choice(corpus.codenames)}"
    if r < 0.92:
        return f"{rng.choice(corpus.codenames)}: {_pick(rng, corpus.topics)}"
    first, second = rng.sample(FIRST_NAMES, 2)
    return f"{first.capitalize()} / {second.capitalize()} 1:1"
