"""The default rule set, until marketers edit rules as data."""

from .engine import EngagementRule, Rules

DEFAULT_RULES = Rules(
    version="default-1",
    engagement={
        "form_submit": EngagementRule(points=10, cap=20),
        "newsletter_signup": EngagementRule(points=5, cap=5),
        "document_download": EngagementRule(points=10, cap=30),
        "consultation_request": EngagementRule(points=30, cap=30),
        "demo_request": EngagementRule(points=40, cap=40),
        "demo_view": EngagementRule(points=20, cap=40),
        "webinar_registration": EngagementRule(points=10, cap=20),
        "event_registration": EngagementRule(points=10, cap=20),
        "event_attendance": EngagementRule(points=25, cap=50),
        "email_open": EngagementRule(points=1, cap=5),
        "email_click": EngagementRule(points=3, cap=15),
        "page_visit": EngagementRule(points=2, cap=20),
        "chat": EngagementRule(points=10, cap=20),
        "social_follow": EngagementRule(points=3, cap=3),
        "support_contact": EngagementRule(points=15, cap=15),
        "sales_call": EngagementRule(points=10, cap=20),
        "unsubscribe": EngagementRule(points=-20, cap=20),
        "email_bounce": EngagementRule(points=-10, cap=10),
    },
    profile_points={
        "email": 10,
        "phone": 10,
        "full_name": 5,
        "company": 10,
        "job_title": 10,
        "industry": 5,
        "city": 5,
        "country": 5,
    },
    half_life_days=90,
    temperature_half_life_days=14,
    mql_total=50,
    mql_min_fit=20,
    warm_at=10,
    hot_at=30,
)


def active_rules() -> Rules:
    return DEFAULT_RULES
