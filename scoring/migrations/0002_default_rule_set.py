from django.db import migrations


def create_default_rule_set(apps, schema_editor):
    from scoring.rules import (
        DEFAULT_AUTHORITY_KEYWORDS,
        DEFAULT_ENGAGEMENT,
        DEFAULT_PROFILE_POINTS,
        DEFAULT_RULES,
    )

    RuleSet = apps.get_model("scoring", "RuleSet")
    if RuleSet.objects.exists():
        return
    policy = DEFAULT_RULES.bant
    rule_set = RuleSet.objects.create(
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
    apps.get_model("scoring", "EngagementRule").objects.bulk_create(
        apps.get_model("scoring", "EngagementRule")(
            rule_set=rule_set, kind=kind, points=points, cap=cap
        )
        for kind, (points, cap) in DEFAULT_ENGAGEMENT.items()
    )
    apps.get_model("scoring", "FitRule").objects.bulk_create(
        apps.get_model("scoring", "FitRule")(
            rule_set=rule_set, field=name, operator="filled", points=points
        )
        for name, points in DEFAULT_PROFILE_POINTS.items()
    )


class Migration(migrations.Migration):
    dependencies = [("scoring", "0001_initial")]

    operations = [
        migrations.RunPython(create_default_rule_set, migrations.RunPython.noop),
    ]
