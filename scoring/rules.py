"""The rule set in force, and the defaults a fresh installation starts from."""

from decimal import Decimal

from .engine import BantPolicy, EngagementRule, FitRule, Rules

DEFAULT_ENGAGEMENT = {
    # kind: (points, cap)
    "form_submit": (10, 20),
    "newsletter_signup": (5, 5),
    "document_download": (10, 30),
    "consultation_request": (30, 30),
    "demo_request": (40, 40),
    "demo_view": (20, 40),
    "webinar_registration": (10, 20),
    "event_registration": (10, 20),
    "event_attendance": (25, 50),
    "email_open": (1, 5),
    "email_click": (3, 15),
    "page_visit": (2, 20),
    "chat": (10, 20),
    "social_follow": (3, 3),
    "support_contact": (15, 15),
    "sales_call": (10, 20),
    "unsubscribe": (-20, 20),
    "email_bounce": (-10, 10),
}
DEFAULT_PROFILE_POINTS = {
    "email": 10,
    "phone": 10,
    "full_name": 5,
    "company": 10,
    "job_title": 10,
    "industry": 5,
    "city": 5,
    "country": 5,
}
DEFAULT_AUTHORITY_KEYWORDS = (
    "giám đốc",
    "trưởng phòng",
    "trưởng nhóm",
    "chủ tịch",
    "chủ doanh nghiệp",
    "quản lý",
    "director",
    "head of",
    "chief",
    "ceo",
    "cto",
    "cfo",
    "cmo",
    "founder",
    "owner",
    "vp",
    "vice president",
)

DEFAULT_RULES = Rules(
    version=0,
    engagement=tuple(
        EngagementRule(key=f"kind:{kind}", kind=kind, points=points, cap=cap)
        for kind, (points, cap) in DEFAULT_ENGAGEMENT.items()
    ),
    fit=tuple(
        FitRule(key=f"profile:{name}", field=name, operator="filled", points=points)
        for name, points in DEFAULT_PROFILE_POINTS.items()
    ),
    bant=BantPolicy(
        stated_points=5,
        confirmed_points=15,
        budget_min=Decimal("50000000"),
        budget_currency="VND",
        authority_keywords=DEFAULT_AUTHORITY_KEYWORDS,
        timeline_max_days=90,
        sql_min_confirmed=3,
        sql_required=("budget", "need"),
    ),
    half_life_days=90,
    temperature_half_life_days=14,
    window_days=7,
    mql_total=50,
    mql_min_fit=20,
    warm_at=10,
    hot_at=30,
)


def active_rules() -> Rules:
    from .models import RuleSet

    return RuleSet.objects.active_rules() or DEFAULT_RULES
