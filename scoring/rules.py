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
    # Registering and staying away says less than registering alone.
    "event_no_show": (-5, 10),
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
    # Any fresh form post makes a lead warm; a demo request or a webinar
    # attended this week makes it hot.
    warm_at=5,
    hot_at=25,
)


def install_default_rule_set(rule_set_model, engagement_model, fit_model):
    """Create the active default rule set where there is no rule set at all.

    Takes the model classes so that the data migration can pass its
    historical models and tests the real ones.
    """
    if rule_set_model.objects.exists():
        return None
    policy = DEFAULT_RULES.bant
    rule_set = rule_set_model.objects.create(
        name="Default rules",
        status="active",
        notes="Created with the installation.",
        half_life_days=DEFAULT_RULES.half_life_days,
        temperature_half_life_days=DEFAULT_RULES.temperature_half_life_days,
        window_days=DEFAULT_RULES.window_days,
        mql_total=DEFAULT_RULES.mql_total,
        mql_min_fit=DEFAULT_RULES.mql_min_fit,
        warm_at=DEFAULT_RULES.warm_at,
        hot_at=DEFAULT_RULES.hot_at,
        bant_stated_points=policy.stated_points,
        bant_confirmed_points=policy.confirmed_points,
        budget_min=policy.budget_min,
        budget_currency=policy.budget_currency,
        authority_keywords="\n".join(DEFAULT_AUTHORITY_KEYWORDS),
        timeline_max_days=policy.timeline_max_days,
        sql_min_confirmed=policy.sql_min_confirmed,
        sql_requires_budget="budget" in policy.sql_required,
        sql_requires_authority="authority" in policy.sql_required,
        sql_requires_need="need" in policy.sql_required,
        sql_requires_timeline="timeline" in policy.sql_required,
    )
    engagement_model.objects.bulk_create(
        engagement_model(rule_set=rule_set, kind=kind, points=points, cap=cap)
        for kind, (points, cap) in DEFAULT_ENGAGEMENT.items()
    )
    fit_model.objects.bulk_create(
        fit_model(rule_set=rule_set, field=name, operator="filled", points=points)
        for name, points in DEFAULT_PROFILE_POINTS.items()
    )
    return rule_set


def active_rules() -> Rules:
    from .models import RuleSet

    return RuleSet.objects.active_rules() or DEFAULT_RULES
