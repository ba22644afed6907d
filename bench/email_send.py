"""Benchmark sending an email campaign to 100,000 leads.

Run on demand, never by the test suite:

    .venv/bin/python bench/email_send.py [--leads 100000] [--batch-size 500]

It builds its own database (leadcrm_email_bench, dropped and recreated),
bulk-loads leads with SQL (nine in ten with email consent) and measures, in
the same run and with Django's console backend writing to /dev/null:

- the baseline: the same consenting leads read from the database, their
  subject and text merged, and sent with `send_mass_mail`: no HTML part, no
  tracking, no per-recipient bookkeeping;
- LeadCRM: `email_campaign_send` with Celery eager, i.e. the recipient rows
  added, then batches claimed, rendered with the open pixel, signed click
  and unsubscribe links, an HTML part and List-Unsubscribe headers, sent
  and marked sent.

It prints messages per second of both and their ratio, and writes
bench/results/email_send.json. The rate limit is off for the measurement.
"""

import argparse
import contextlib
import json
import logging
import os
import sys
import time

import psycopg2

from stack import ROOT, database_recreate

DEFAULT_DATABASE = "postgres://postgres@127.0.0.1:5432/leadcrm_email_bench"

LOAD_LEADS = """
INSERT INTO leads_lead (
    email, phone, external_id, first_name, last_name, full_name, company,
    job_title, industry, city, country, source, origin, custom,
    first_touch_utm, last_touch_utm, level, status, score, engagement_score,
    fit_score, bant_score, temperature, score_breakdown, score_stale,
    search_text, email_consent, created_at, updated_at)
SELECT
    'lead' || g || '@example.vn', '', '',
    CASE WHEN g %% 3 = 0 THEN '' ELSE 'An ' || g END, 'Nguyễn',
    'Nguyễn An ' || g,
    CASE WHEN g %% 2 = 0 THEN 'Công ty ' || (g %% 5000) ELSE '' END,
    '', '', '', 'Việt Nam', 'bench', '',
    jsonb_build_object('course', CASE WHEN g %% 2 = 0 THEN 'MBA' ELSE 'BBA' END),
    '{}'::jsonb, '{}'::jsonb, 'iql', 'open', 0, 0, 0, 0, 'cold', '[]'::jsonb,
    false, 'nguyen an ' || g, g %% 10 <> 0, now(), now()
FROM generate_series(1, %(leads)s) AS g
"""

SUBJECT = "{first_name|Xin chào}, học bổng {custom.course|MBA} 2026"
BODY = """Chào {first_name|bạn},

{company|Quý công ty} có thể nhận học bổng {custom.course|MBA} năm nay.
Xem chi tiết: https://example.vn/hoc-bong
Đăng ký tư vấn: https://example.vn/tu-van

Trân trọng,
Phòng tuyển sinh"""


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--leads", type=int, default=100_000)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--database-url", default=DEFAULT_DATABASE)
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    database_recreate(args.database_url)
    os.environ.update(
        DATABASE_URL=args.database_url,
        DJANGO_SETTINGS_MODULE="leadcrm.settings",
        DJANGO_EMAIL_BACKEND="django.core.mail.backends.console.EmailBackend",
        CELERY_BROKER_URL="",
        LEADCRM_EMAIL_BATCH_SIZE=str(args.batch_size),
        LEADCRM_EMAIL_RATE_PER_SECOND="0",
        LOG_LEVEL="WARNING",
    )
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    logging.disable(logging.INFO)
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    load_started = time.monotonic()
    conn = psycopg2.connect(args.database_url)
    conn.autocommit = True
    with conn.cursor() as cursor:
        cursor.execute(LOAD_LEADS, {"leads": args.leads})
        cursor.execute("ANALYZE leads_lead")
    conn.close()
    print(f"Loaded {args.leads:,} leads in {time.monotonic() - load_started:.1f} s")

    baseline = measure_baseline()
    leadcrm = measure_leadcrm()
    report = {
        "leads": args.leads,
        "batch_size": args.batch_size,
        "baseline_messages": baseline[0],
        "baseline_seconds": round(baseline[1], 2),
        "baseline_per_second": round(baseline[0] / baseline[1]),
        "leadcrm_messages": leadcrm[0],
        "leadcrm_seconds": round(leadcrm[1], 2),
        "leadcrm_per_second": round(leadcrm[0] / leadcrm[1]),
    }
    report["ratio"] = round(
        report["leadcrm_per_second"] / report["baseline_per_second"], 3
    )
    print_report(report)
    results = ROOT / "bench" / "results"
    results.mkdir(parents=True, exist_ok=True)
    (results / "email_send.json").write_text(json.dumps(report, indent=2) + "\n")
    return 0 if baseline[0] == leadcrm[0] else 1


@contextlib.contextmanager
def to_devnull():
    # The console backend writes to sys.stdout as it is when a connection
    # is made, so swapping it sends every message to /dev/null.
    saved = sys.stdout
    with open(os.devnull, "w") as sink:
        sys.stdout = sink
        try:
            yield
        finally:
            sys.stdout = saved


def measure_baseline() -> tuple[int, float]:
    from campaigns.emails import MERGE_FIELDS, Template, merge_values
    from django.conf import settings
    from django.core.mail import send_mass_mail
    from leads.models import Lead

    template = Template.of(subject=SUBJECT, body=BODY)
    with to_devnull():
        started = time.perf_counter()
        leads = Lead.objects.filter(email_consent=True).only("custom", *MERGE_FIELDS)
        datatuple = []
        for lead in leads.iterator(chunk_size=2000):
            rendered = template.render(merge_values(lead))
            datatuple.append(
                (rendered.subject, rendered.text, settings.DEFAULT_FROM_EMAIL,
                 [lead.email])
            )  # fmt: skip
        sent = send_mass_mail(datatuple)
        elapsed = time.perf_counter() - started
    return sent, elapsed


def measure_leadcrm() -> tuple[int, float]:
    from campaigns.email_sending import email_campaign_send
    from campaigns.models import Campaign, EmailCampaign, EmailRecipient, Segment
    from django.contrib.auth import get_user_model

    sender = get_user_model().objects.create_superuser("bench", password="x")
    email = EmailCampaign.objects.create(
        campaign=Campaign.objects.create(name="Bench"),
        segment=Segment.objects.create(name="Everyone", filters={}),
        name="Bench",
        subject=SUBJECT,
        body=BODY,
    )
    with to_devnull():
        started = time.perf_counter()
        # Outside a transaction the send commits at once and the eager
        # task runs right away, to the end.
        email_campaign_send(email_campaign_id=email.pk, by=sender)
        elapsed = time.perf_counter() - started
    sent = EmailRecipient.objects.filter(email_campaign=email, status="sent").count()
    return sent, elapsed


def print_report(report: dict) -> None:
    print(
        f"Baseline send_mass_mail: {report['baseline_messages']:,} messages in "
        f"{report['baseline_seconds']} s = {report['baseline_per_second']:,}/s"
    )
    print(
        f"LeadCRM campaign:        {report['leadcrm_messages']:,} messages in "
        f"{report['leadcrm_seconds']} s = {report['leadcrm_per_second']:,}/s"
    )
    print(f"Ratio LeadCRM / baseline: {report['ratio']}")


if __name__ == "__main__":
    sys.exit(main())
