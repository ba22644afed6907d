"""Demo data for `make run`: users in every role, a sales team with a few
MQLs already in its reps' inboxes, a campaign with its form, a webinar next
week with its registration form, and leads.

Safe to run again and again: everything is found before it is made, and the
leads go through the ingest service with idempotency keys, so a second run
writes nothing.
"""

import logging
import random
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TextIO

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import Group
from django.db import transaction
from django.utils import timezone

from leads.assignment import lead_assign_many
from leads.importing import MAPPINGS_DIR, lead_import_csv, mapping_load
from leads.models import (
    Assignment,
    AssignmentRule,
    Channel,
    InteractionKind,
    Lead,
    LeadStatus,
    Level,
    RuleField,
    Team,
    TeamMember,
)
from leads.normalize import fold_for_search
from leads.services import InteractionData, LeadData, lead_ingest
from scoring.services import score_recompute_many

from .models import Campaign, CampaignKind, Event, EventKind, FormField, WebForm
from .services import webform_consent_set

logger = logging.getLogger(__name__)

DEMO_PASSWORD = "leadcrm-demo"
DEMO_FORM_KEY = "demo"
DEMO_UTM_CAMPAIGN = "vn-growth-2026"
SAMPLE_FILE = "x-education-leads-sample.csv"
SAMPLE_MAPPING = MAPPINGS_DIR / "x-education.json"
GENERATED_LEADS = 200
SALES_TEAM = "Hà Nội"
# (username, first name, last name) of the team's manager, then its reps.
SALES_MANAGER = ("manager", "Quân", "Hoàng Minh")
SALES_REPS = (("rep", "Hà", "Trần Thu"), ("rep2", "Anh", "Lê Đức"))
SALES_REP_CAPACITY = 30
# MQLs given to the reps on the first run, so their inboxes are not empty.
ASSIGNED_MQLS = 6
EVENT_FORM_KEY = "webinar"
EVENT_UTM_CAMPAIGN = "mql-to-deal-webinar"

FAMILY_NAMES = (
    "Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Phan", "Vũ", "Võ",
    "Đặng", "Bùi", "Đỗ", "Hồ", "Ngô", "Dương", "Lý",
)  # fmt: skip
MIDDLE_NAMES = (
    "Văn", "Thị", "Minh", "Ngọc", "Thanh", "Đức", "Hữu", "Quốc", "Thu", "Hoài",
    "Gia", "Bảo",
)  # fmt: skip
GIVEN_NAMES = (
    "An", "Bình", "Châu", "Dũng", "Giang", "Hà", "Hải", "Hạnh", "Hiếu", "Hoa",
    "Hùng", "Hương", "Khánh", "Lan", "Linh", "Long", "Mai", "Nam", "Ngân",
    "Nhung", "Phúc", "Phương", "Quân", "Quang", "Sơn", "Tâm", "Thảo", "Trang",
    "Trung", "Tuấn", "Vy", "Yến", "Đạt", "Ánh",
)  # fmt: skip
# (company, email domain, industry); .example domains reach nobody.
COMPANIES = (
    ("Công ty TNHH Sao Việt", "saoviet.example", "Bán lẻ"),
    ("Công ty CP Minh Phát", "minhphat.example", "Sản xuất"),
    ("Công ty CP Công nghệ Hà Thành", "hathanh.example", "Công nghệ thông tin"),
    ("Ngân hàng TMCP Phương Đông Số", "phuongdongso.example", "Tài chính"),
    ("Trường Quốc tế Ánh Dương", "anhduong.example", "Giáo dục"),
    ("Công ty Du lịch Biển Xanh", "bienxanh.example", "Du lịch"),
    ("Tập đoàn Địa ốc Hưng Thịnh Phát", "hungthinhphat.example", "Bất động sản"),
    ("Công ty TNHH Logistics Cửu Long", "cuulong.example", "Vận tải"),
    ("Công ty CP Thực phẩm Sen Vàng", "senvang.example", "Thực phẩm"),
    ("Phòng khám Đa khoa An Tâm", "antam.example", "Y tế"),
)
JOB_TITLES = (
    "Giám đốc điều hành",
    "Giám đốc Marketing",
    "Trưởng phòng Kinh doanh",
    "Trưởng phòng Nhân sự",
    "Chuyên viên Marketing",
    "Kế toán trưởng",
    "Trưởng nhóm Công nghệ",
    "Nhân viên Kinh doanh",
)
CITIES = (
    "Hà Nội",
    "TP. Hồ Chí Minh",
    "Đà Nẵng",
    "Hải Phòng",
    "Cần Thơ",
    "Huế",
    "Nha Trang",
    "Biên Hòa",
)
SOURCES = ("Facebook Ads", "Google Ads", "Zalo", "Website", "Giới thiệu", "Sự kiện")
MOBILE_PREFIXES = ("90", "91", "93", "94", "96", "97", "98", "32", "35", "37", "39")
MOBILE_PREFIXES += ("70", "76", "77", "78", "79", "81", "83", "84", "86", "88", "89")
# (kind, channel, weight, most in one interaction): what a lead did,
# roughly as often as people do it.
ACTIVITY = (
    (InteractionKind.EMAIL_OPEN, Channel.EMAIL, 30, 3),
    (InteractionKind.PAGE_VISIT, Channel.WEB_FORM, 25, 8),
    (InteractionKind.EMAIL_CLICK, Channel.EMAIL, 12, 2),
    (InteractionKind.FORM_SUBMIT, Channel.WEB_FORM, 10, 1),
    (InteractionKind.DOCUMENT_DOWNLOAD, Channel.WEB_FORM, 8, 1),
    (InteractionKind.WEBINAR_REGISTRATION, Channel.WEB_FORM, 8, 1),
    (InteractionKind.CHAT, Channel.WEB_FORM, 4, 1),
    (InteractionKind.DEMO_REQUEST, Channel.WEB_FORM, 2, 1),
    (InteractionKind.EVENT_ATTENDANCE, Channel.EVENT, 1, 1),
)


@dataclass
class DemoReport:
    users_created: list[str] = field(default_factory=list)
    from_sample: bool = False
    leads_seen: int = 0
    leads_created: int = 0
    leads_skipped: int = 0
    leads_assigned: int = 0
    event: Event | None = None


def sample_csv_path() -> Path:
    return Path(settings.LEADCRM["SAMPLE_DATA_DIR"]) / SAMPLE_FILE


def demo_seed(*, progress_file: TextIO | None = None) -> DemoReport:
    """Create the demo users, campaign, form and leads that are missing.

    The X Education sample is imported when it is present; otherwise
    GENERATED_LEADS Vietnamese leads are made up, the same ones every time.
    """
    report = DemoReport()
    admin, created = _demo_user("admin", superuser=True)
    if created:
        report.users_created.append(admin.get_username())
    marketer, created = _demo_user("marketer", superuser=False)
    if created:
        report.users_created.append(marketer.get_username())
    # The role's group comes with the migrations; adding is idempotent, so a
    # demo made before the roles existed gets it on the next run.
    marketer.groups.add(*Group.objects.filter(name="Marketer"))

    campaign = _demo_campaign(owner=marketer)

    sample = sample_csv_path()
    if sample.exists():
        imported = lead_import_csv(
            path=sample,
            mapping=mapping_load(SAMPLE_MAPPING),
            rescore=score_recompute_many,
            progress_file=progress_file,
        )
        report.from_sample = True
        report.leads_seen = imported.rows
        report.leads_created = imported.created
        report.leads_skipped = imported.skipped
    else:
        report.leads_seen, report.leads_created = _generate_leads(campaign)

    # The team comes after the leads: the import's own hand-off finds no
    # team and leaves every MQL with marketing, and only a handful are then
    # given to the reps, through the same service a new MQL goes through.
    team = _demo_sales_team(report)
    report.leads_assigned = _demo_assign(team)
    report.event = _demo_event(owner=marketer)

    logger.info(
        "Demo seeded: %s leads, %s new (sample=%s), %s assigned",
        report.leads_seen,
        report.leads_created,
        report.from_sample,
        report.leads_assigned,
    )
    return report


def _demo_user(
    username: str,
    *,
    superuser: bool,
    first_name: str = "Lan",
    last_name: str = "Nguyễn",
    staff: bool = False,
) -> tuple[AbstractBaseUser, bool]:
    user_model = get_user_model()
    user = user_model.objects.filter(username=username).first()
    if user is not None:
        # A password changed since the first run is the owner's choice.
        return user, False

    email = f"{username}@leadcrm.example"
    if superuser:
        user = user_model.objects.create_superuser(username, email, DEMO_PASSWORD)
    else:
        user = user_model.objects.create_user(
            username,
            email,
            DEMO_PASSWORD,
            first_name=first_name,
            last_name=last_name,
            is_staff=staff,
        )
    return user, True


def _demo_sales_team(report: DemoReport) -> Team:
    """The Hà Nội team: a manager, two reps, and a rule that routes the
    city's leads to it."""
    username, first_name, last_name = SALES_MANAGER
    # Assignment rules are kept in Django admin, which admits staff only.
    manager, created = _demo_user(
        username,
        superuser=False,
        first_name=first_name,
        last_name=last_name,
        staff=True,
    )
    if created:
        report.users_created.append(username)
    manager.groups.add(*Group.objects.filter(name="Sales manager"))
    team, _created = Team.objects.get_or_create(
        name=SALES_TEAM, defaults={"manager": manager}
    )

    for username, first_name, last_name in SALES_REPS:
        rep, created = _demo_user(
            username, superuser=False, first_name=first_name, last_name=last_name
        )
        if created:
            report.users_created.append(username)
        rep.groups.add(*Group.objects.filter(name="Sales rep"))
        # A rep moved to another team since the first run stays there.
        TeamMember.objects.get_or_create(
            user=rep, defaults={"team": team, "capacity": SALES_REP_CAPACITY}
        )

    AssignmentRule.objects.get_or_create(
        name="Hà Nội leads",
        defaults={
            "priority": 10,
            "field": RuleField.PROVINCE,
            "values": "Hà Nội, Ha Noi, Hanoi",
            "team": team,
        },
    )
    return team


def _demo_assign(team: Team) -> int:
    """Give the best few waiting MQLs to the team's reps by round robin, once:
    a team that was ever given a lead is left as it is."""
    if Assignment.objects.filter(team=team).exists():
        return 0
    waiting = (
        Lead.objects.filter(level=Level.MQL, status=LeadStatus.OPEN, owner__isnull=True)
        .order_by("-score", "pk")
        .values_list("pk", flat=True)[:ASSIGNED_MQLS]
    )
    return lead_assign_many(lead_ids=list(waiting))


def _demo_campaign(*, owner: AbstractBaseUser) -> Campaign:
    campaign = Campaign.objects.filter(utm_campaign=DEMO_UTM_CAMPAIGN).first()
    if campaign is None:
        campaign = Campaign.objects.create(
            name="Vietnam Growth Webinar 2026",
            kind=CampaignKind.WEBINAR,
            utm_campaign=DEMO_UTM_CAMPAIGN,
            starts_on=date(2026, 3, 12),
            ends_on=date(2026, 3, 12),
            budget=Decimal("50000000"),
            currency="VND",
            owner=owner,
        )

    form, created = WebForm.objects.get_or_create(
        key=DEMO_FORM_KEY,
        defaults={
            "campaign": campaign,
            "name": "Webinar registration",
            "interaction_kind": InteractionKind.WEBINAR_REGISTRATION,
            "thank_you_message_en": "See you at the webinar!",
            "thank_you_message_vi": "Hẹn gặp bạn tại webinar!",
        },
    )
    if created:
        _demo_form_fields(form)
    return campaign


# The hosted demo form (/f/demo/): the fields of static/demo/form.html, and a
# consent box.
DEMO_FIELDS = (
    ("full_name", "Full name", "Họ và tên", False),
    ("email", "Email", "Email", False),
    ("phone", "Phone", "Số điện thoại", False),
    ("company", "Company", "Công ty", False),
    ("job_title", "Job title", "Chức danh", False),
    ("city", "City", "Thành phố", False),
    (
        "consent",
        "Email me about this and later events",
        "Gửi email cho tôi về sự kiện này và các sự kiện sau",
        False,
    ),
)


def _demo_form_fields(form: WebForm) -> None:
    FormField.objects.bulk_create(
        FormField(
            form=form,
            name=name,
            label_en=label_en,
            label_vi=label_vi,
            required=required,
            position=position,
        )
        for position, (name, label_en, label_vi, required) in enumerate(DEMO_FIELDS)
    )
    webform_consent_set(
        form=form,
        purpose="Event emails",
        text_en="We will email you about this webinar and our next events. "
        "You can unsubscribe at any time.",
        text_vi="Chúng tôi sẽ gửi email về webinar này và các sự kiện tiếp theo. "
        "Bạn có thể hủy đăng ký bất cứ lúc nào.",
    )


def _demo_event(*, owner: AbstractBaseUser) -> Event:
    """A webinar a week after the first run, with its own campaign and a
    registration form: a processed post of the form registers the lead."""
    form = WebForm.objects.filter(key=EVENT_FORM_KEY).first()
    event = Event.objects.filter(form=form).first() if form else None
    if event is not None:
        return event

    starts_at = (timezone.localtime() + timedelta(days=7)).replace(
        hour=14, minute=0, second=0, microsecond=0
    )
    with transaction.atomic():
        campaign, _created = Campaign.objects.get_or_create(
            utm_campaign=EVENT_UTM_CAMPAIGN,
            defaults={
                "name": "Webinar: Từ MQL đến hợp đồng",
                "kind": CampaignKind.WEBINAR,
                "starts_on": starts_at.date(),
                "ends_on": starts_at.date(),
                "budget": Decimal("15000000"),
                "currency": "VND",
                "owner": owner,
            },
        )
        if form is None:
            # The event records the registration itself; the form records
            # only that it was filled in.
            form = WebForm.objects.create(
                campaign=campaign,
                key=EVENT_FORM_KEY,
                name="Webinar registration",
                interaction_kind=InteractionKind.FORM_SUBMIT,
                thank_you_message_en="Your seat is booked. See you next week!",
                thank_you_message_vi="Bạn đã đăng ký thành công. Hẹn gặp tuần sau!",
            )
            _demo_form_fields(form)
        event = Event(
            campaign=campaign,
            name="Từ MQL đến hợp đồng: bán hàng B2B tại Việt Nam",
            kind=EventKind.WEBINAR,
            starts_at=starts_at,
            ends_at=starts_at + timedelta(minutes=90),
            online_url="https://webinar.leadcrm.example/mql-to-deal",
            capacity=100,
            form=form,
        )
        event.full_clean()
        event.save()
    return event


def _generate_leads(campaign: Campaign) -> tuple[int, int]:
    """Ingest the made-up leads; returns (leads, of which new)."""
    rng = random.Random(42)
    now = timezone.now()
    phones: set[str] = set()
    changed: list[int] = []
    created = 0

    with transaction.atomic():
        for number in range(1, GENERATED_LEADS + 1):
            data, interactions = _made_up_lead(number, rng, now, phones, campaign)
            result = lead_ingest(data=data, interactions=interactions, announce=False)
            created += result.created
            if result.changed:
                changed.append(result.lead.pk)

    score_recompute_many(lead_ids=changed)
    return GENERATED_LEADS, created


def _made_up_lead(
    number: int,
    rng: random.Random,
    now: datetime,
    phones: set[str],
    campaign: Campaign,
) -> tuple[LeadData, list[InteractionData]]:
    family = rng.choice(FAMILY_NAMES)
    middle = rng.choice(MIDDLE_NAMES)
    given = rng.choice(GIVEN_NAMES)
    company, domain, industry = rng.choice(COMPANIES)

    phone = _unique_phone(rng, phones)
    email = f"{_ascii(given)}.{_ascii(family)}{number}@{domain}"
    # Some people leave only a phone number, some only an email.
    reach = rng.random()
    if reach < 0.1:
        email = ""
    elif reach < 0.2:
        phone = ""

    # Most people who download an ebook give a name and one contact only,
    # so the demo funnel starts wide: few leads fit well enough for MQL.
    job_title, city, country = rng.choice(JOB_TITLES), rng.choice(CITIES), "Việt Nam"
    if rng.random() < 0.6:
        company = job_title = industry = city = country = ""

    interactions = _made_up_activity(number, rng, now, campaign)
    registered = any(
        i.kind == InteractionKind.WEBINAR_REGISTRATION for i in interactions
    )
    data = LeadData(
        email=email,
        phone=phone,
        first_name=given,
        last_name=f"{family} {middle}",
        full_name=f"{family} {middle} {given}",
        company=company,
        job_title=job_title,
        industry=industry,
        city=city,
        country=country,
        source="Facebook Ads" if registered else rng.choice(SOURCES),
        utm=_webinar_utm() if registered else {},
        campaign_id=campaign.pk if registered else None,
        # Most who leave an email agree to hear from us, so email campaigns
        # have someone to write to in the demo.
        email_consent=bool(email) and number % 10 < 7,
    )
    return data, interactions


def _made_up_activity(
    number: int, rng: random.Random, now: datetime, campaign: Campaign
) -> list[InteractionData]:
    weights = [weight for _kind, _channel, weight, _most in ACTIVITY]

    interactions = []
    for slot in range(rng.randint(1, 5)):
        kind, channel, _weight, most = rng.choices(ACTIVITY, weights)[0]
        webinar = kind == InteractionKind.WEBINAR_REGISTRATION
        interactions.append(
            InteractionData(
                kind=kind,
                channel=channel,
                occurred_at=now - timedelta(days=rng.uniform(0, 90)),
                quantity=rng.randint(1, most),
                campaign_id=campaign.pk if webinar else None,
                idempotency_key=f"demo:{number}:{slot}",
            )
        )
    return interactions


def _unique_phone(rng: random.Random, taken: set[str]) -> str:
    while True:
        phone = "0" + rng.choice(MOBILE_PREFIXES) + f"{rng.randrange(10**7):07d}"
        if phone not in taken:
            taken.add(phone)
            return phone


def _ascii(name: str) -> str:
    return fold_for_search(name).replace(" ", "")


def _webinar_utm() -> dict[str, str]:
    return {
        "utm_source": "facebook",
        "utm_medium": "cpc",
        "utm_campaign": DEMO_UTM_CAMPAIGN,
    }
