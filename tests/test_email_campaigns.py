"""Email campaigns: segments, merge fields, sending, tracking, bounces."""

import re
from urllib.parse import urlparse

import pytest
from django.core.management import call_command
from django.urls import reverse

from campaigns.email_sending import (
    email_batch_send,
    email_campaign_send,
    email_campaign_sweep,
    email_recipients_add,
)
from campaigns.emails import Template
from campaigns.models import (
    Campaign,
    EmailCampaign,
    EmailRecipient,
    EmailStatus,
    RecipientStatus,
    Segment,
)
from campaigns.segments import filter_leads
from leads.models import Interaction, InteractionKind, Lead

BODY = (
    "Xin chào {first_name|bạn},\n\n"
    "Our guide for {company|your company} is at https://example.vn/guide.\n"
    "Kept as typed: {{ first_name }} {% if x %}\n\n"
    "Book a demo: https://example.vn/demo"
)
FORM_ENCODED = "application/x-www-form-urlencoded"


@pytest.fixture(autouse=True)
def _email_settings(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.LEADCRM = {
        **settings.LEADCRM,
        "EMAIL_RATE_PER_SECOND": 0,
        "EMAIL_BATCH_SIZE": 2,
        "PUBLIC_URL": "https://crm.example.com/",
        "BOUNCE_TOKEN": "bounce-secret",
    }


@pytest.fixture
def marketer(make_user):
    return make_user("mai", role="Marketer")


@pytest.fixture
def campaign(db):
    return Campaign.objects.create(name="Newsletter Q3", kind="newsletter")


@pytest.fixture
def segment(db):
    return Segment.objects.create(name="MBA", filters={"custom": "course=MBA"})


@pytest.fixture
def email(campaign, segment):
    return EmailCampaign.objects.create(
        campaign=campaign,
        segment=segment,
        name="September newsletter",
        subject="{first_name|Hello}, news from {company|us}",
        body=BODY,
    )


@pytest.fixture
def leads(make_lead):
    mba = {"course": "MBA"}
    return {
        "thao": make_lead(
            email="thao@vinatech.vn", first_name="Thảo", company="VinaTech",
            custom=mba, email_consent=True,
        ),
        "anon": make_lead(email="someone@example.vn", custom=mba, email_consent=True),
        "refused": make_lead(
            email="no@example.vn", first_name="Nam", custom=mba, email_consent=False
        ),
        "unknown": make_lead(email="unknown@example.vn", custom=mba),
        "other_course": make_lead(
            email="bba@example.vn", custom={"course": "BBA"}, email_consent=True
        ),
    }  # fmt: skip


def send(email, by, capture) -> None:
    with capture(execute=True):
        email_campaign_send(email_campaign_id=email.pk, by=by)


def by_recipient(mailoutbox) -> dict[str, object]:
    return {message.to[0]: message for message in mailoutbox}


def tracking_path(message, kind: str) -> str:
    html = message.alternatives[0][0]
    text = message.body
    url = re.search(rf"https://crm\.example\.com/e/{kind}/[^\s\"<]+", html + text)
    return urlparse(url.group(0)).path


# Composition


def test_merge_fields_take_values_or_fallbacks_and_template_code_stays_literal():
    template = Template.of(subject="Hi {first_name|there}", body=BODY)

    with_name = template.render({"first_name": "Thảo", "company": "VinaTech"})
    without = template.render({})

    assert with_name.subject == "Hi Thảo"
    assert with_name.text.startswith("Xin chào Thảo,\n\nOur guide for VinaTech is")
    assert without.subject == "Hi there"
    assert without.text.startswith("Xin chào bạn,\n\nOur guide for your company is")
    assert "Kept as typed: {{ first_name }} {% if x %}" in without.text
    assert template.links == ("https://example.vn/guide", "https://example.vn/demo")


def test_a_lead_known_by_full_name_only_is_greeted_by_their_given_name():
    from types import SimpleNamespace

    from campaigns.emails import merge_values

    fields = dict.fromkeys(
        ("last_name", "company", "job_title", "industry", "city", "country"), ""
    )
    lead = SimpleNamespace(
        first_name="", full_name="Phạm Minh Đồng", email="", custom={}, **fields
    )

    assert merge_values(lead)["first_name"] == "Đồng"


def test_a_leads_data_is_escaped_in_the_html_part():
    rendered = Template.of(subject="x", body="Hi {company}").render(
        {"company": '<script>alert("x")</script>'}
    )

    assert "<script>" not in rendered.html
    assert "&lt;script&gt;" in rendered.html


def test_an_unknown_merge_field_is_refused_by_name():
    with pytest.raises(Exception) as caught:
        Template.of(subject="Hi {frist_name}", body="ok {custom.course}")

    assert "{frist_name}" in str(caught.value)


# Segments


@pytest.mark.django_db
def test_a_segment_filters_by_level_score_source_consent_and_custom_fields(
    make_lead, campaign
):
    make_lead(
        email="a@x.vn",
        source="facebook",
        email_consent=True,
        custom={"course": "MBA", "year": 2026},
        campaign_id=campaign.pk,
    )
    make_lead(
        email="b@x.vn", source="google", email_consent=False, custom={"course": "MBA"}
    )
    make_lead(email="c@x.vn", source="facebook", custom={"course": "BBA"})  # fmt: skip

    def emails(**filters):
        return sorted(filter_leads(filters).values_list("email", flat=True))

    assert emails(custom="course = MBA") == ["a@x.vn", "b@x.vn"]
    assert emails(custom="year=2026") == ["a@x.vn"]
    assert emails(source="facebook", consent="unknown") == ["c@x.vn"]
    assert emails(consent="yes") == ["a@x.vn"]
    assert emails(campaign=str(campaign.pk)) == ["a@x.vn"]
    assert emails(level=["iql"], score_max="1000") == ["a@x.vn", "b@x.vn", "c@x.vn"]
    assert emails(level=["mql"]) == []


@pytest.mark.django_db
def test_a_custom_condition_key_is_a_plain_key_and_odd_numbers_match_text(make_lead):
    make_lead(email="a@x.vn", custom={"course": "MBA", "a__regex": "^M", "n": "nan"})
    make_lead(email="b@x.vn", custom={"course": "BBA", "hours": 1.5, "ok": True})

    def emails(custom):
        return sorted(filter_leads({"custom": custom}).values_list("email", flat=True))

    assert emails("course__regex = ^M") == []
    assert emails("a__regex = ^M") == ["a@x.vn"]
    assert emails("n = nan") == ["a@x.vn"]
    assert emails("course = inf") == []
    assert emails("hours = 1.5") == ["b@x.vn"]
    assert emails("ok = true") == ["b@x.vn"]


@pytest.mark.django_db
def test_saved_filters_that_stopped_making_sense_match_nobody_rather_than_everyone(
    make_lead,
):
    make_lead(email="a@x.vn")

    with pytest.raises(Exception, match="campaign"):
        filter_leads({"campaign": "999999"})


@pytest.mark.django_db
def test_the_live_count_says_how_many_match_and_how_many_can_be_emailed(
    client, marketer, leads
):
    client.force_login(marketer)

    url = reverse("emails:segment_count")
    response = client.get(url, {"custom": "course=MBA"}, HTTP_HX_REQUEST="true")

    assert response.status_code == 200
    text = " ".join(response.content.decode().split())
    assert "4 leads match; 2 can be emailed" in text


@pytest.mark.django_db
def test_a_marketer_saves_a_segment(client, marketer, leads):
    client.force_login(marketer)

    response = client.post(
        reverse("emails:segment_create"),
        {"name": "Hot MBA", "custom": "course=MBA", "temperature": ["hot", "warm"]},
    )

    assert response.status_code == 302
    segment = Segment.objects.get(name="Hot MBA")
    assert segment.filters == {"temperature": ["hot", "warm"], "custom": "course=MBA"}
    assert segment.created_by == marketer


@pytest.mark.django_db
def test_a_segment_with_a_bad_custom_condition_is_not_saved(client, marketer):
    client.force_login(marketer)

    response = client.post(
        reverse("emails:segment_create"), {"name": "Bad", "custom": "no equals sign"}
    )

    assert response.status_code == 400
    assert "write key = value" in response.content.decode()
    assert not Segment.objects.exists()


# Sending


@pytest.mark.django_db
def test_only_consenting_leads_of_the_segment_get_the_email_personalised(
    email, leads, marketer, mailoutbox, django_capture_on_commit_callbacks
):
    send(email, marketer, django_capture_on_commit_callbacks)

    sent = by_recipient(mailoutbox)
    assert sorted(sent) == ["someone@example.vn", "thao@vinatech.vn"]
    thao, anon = sent["thao@vinatech.vn"], sent["someone@example.vn"]
    assert thao.subject == "Thảo, news from VinaTech"
    assert anon.subject == "Hello, news from us"
    assert thao.body.startswith("Xin chào Thảo,")
    assert anon.body.startswith("Xin chào bạn,")
    assert "https://example.vn/guide" not in thao.body  # tracked instead
    assert thao.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert thao.extra_headers["List-Unsubscribe"].startswith(
        "<https://crm.example.com/e/u/"
    )
    assert 'src="https://crm.example.com/e/o/' in thao.alternatives[0][0]
    email.refresh_from_db()
    assert email.status == EmailStatus.SENT
    assert email.links == ["https://example.vn/guide", "https://example.vn/demo"]


@pytest.mark.django_db
def test_sending_twice_sends_once(
    email, leads, marketer, mailoutbox, django_capture_on_commit_callbacks
):
    send(email, marketer, django_capture_on_commit_callbacks)
    send(email, marketer, django_capture_on_commit_callbacks)

    assert len(mailoutbox) == 2
    assert EmailRecipient.objects.filter(email_campaign=email).count() == 2


@pytest.mark.django_db
def test_sending_again_reaches_only_leads_who_joined_the_segment_since(
    email, leads, marketer, mailoutbox, make_lead, django_capture_on_commit_callbacks
):
    send(email, marketer, django_capture_on_commit_callbacks)
    make_lead(email="new@example.vn", custom={"course": "MBA"}, email_consent=True)

    send(email, marketer, django_capture_on_commit_callbacks)

    assert [m.to[0] for m in mailoutbox[2:]] == ["new@example.vn"]


@pytest.mark.django_db
def test_rows_a_lost_worker_claimed_are_not_sent_again(email, leads, mailoutbox):
    email_recipients_add(email_campaign_id=email.pk)
    EmailRecipient.objects.filter(lead=leads["thao"]).update(
        status=RecipientStatus.CLAIMED, claimed_at="2020-01-01T00:00Z"
    )
    EmailCampaign.objects.filter(pk=email.pk).update(status=EmailStatus.SENDING)

    email_campaign_sweep()
    email_batch_send(email_campaign_id=email.pk)
    email_batch_send(email_campaign_id=email.pk)

    assert [m.to[0] for m in mailoutbox] == ["someone@example.vn"]
    assert EmailRecipient.objects.get(lead=leads["thao"]).status == "failed"


@pytest.mark.django_db
def test_a_lead_who_withdrew_consent_after_being_queued_is_skipped(
    email, leads, mailoutbox
):
    email_recipients_add(email_campaign_id=email.pk)
    Lead.objects.filter(pk=leads["anon"].pk).update(email_consent=False)

    email_batch_send(email_campaign_id=email.pk)

    assert [m.to[0] for m in mailoutbox] == ["thao@vinatech.vn"]
    assert EmailRecipient.objects.get(lead=leads["anon"]).status == "skipped"


@pytest.mark.django_db
def test_a_batch_costs_the_same_queries_whatever_its_size(
    email, make_lead, mailoutbox, django_assert_num_queries, settings
):
    for n in range(12):
        make_lead(email=f"p{n}@x.vn", custom={"course": "MBA"}, email_consent=True)
    email_recipients_add(email_campaign_id=email.pk)

    # Claim (select, update), load, mark sent, heartbeat, and the campaign.
    with django_assert_num_queries(8):
        email_batch_send(email_campaign_id=email.pk, size=2)
    with django_assert_num_queries(8):
        email_batch_send(email_campaign_id=email.pk, size=10)
    assert len(mailoutbox) == 12


@pytest.mark.django_db
def test_only_a_sender_may_send(email, make_user):
    rep = make_user("rep", role="Sales rep")

    with pytest.raises(Exception, match="may not send"):
        email_campaign_send(email_campaign_id=email.pk, by=rep)


# Tracking


@pytest.fixture
def sent(email, leads, marketer, mailoutbox, django_capture_on_commit_callbacks):
    send(email, marketer, django_capture_on_commit_callbacks)
    return by_recipient(mailoutbox)


def interactions(lead, kind) -> int:
    return Interaction.objects.filter(lead=lead, kind=kind).count()


# Rescoring runs after commit, as in production: a test inside one
# transaction would rescore a lead twice in it, which the scoring's
# per-commit batch table does not expect.
@pytest.mark.django_db(transaction=True)
def test_an_open_and_a_click_are_interactions_that_rescore_the_lead(
    client, email, leads, make_user, mailoutbox
):
    sender = make_user("sender", perms=["campaigns.send_emailcampaign"])
    email_campaign_send(email_campaign_id=email.pk, by=sender)
    message = by_recipient(mailoutbox)["thao@vinatech.vn"]
    lead = leads["thao"]
    before = Lead.objects.get(pk=lead.pk).engagement_score

    pixel = client.get(tracking_path(message, "o"))
    client.get(tracking_path(message, "o"))
    after_open = Lead.objects.get(pk=lead.pk).engagement_score
    click = client.get(tracking_path(message, "c"))
    after_click = Lead.objects.get(pk=lead.pk).engagement_score
    client.post(tracking_path(message, "u"))
    after_unsubscribe = Lead.objects.get(pk=lead.pk)

    assert pixel.status_code == 200
    assert pixel["Content-Type"] == "image/gif"
    assert click.status_code == 302
    assert click["Location"] == "https://example.vn/guide"
    assert interactions(lead, InteractionKind.EMAIL_OPEN) == 1
    assert interactions(lead, InteractionKind.EMAIL_CLICK) == 1
    assert (before, after_open, after_click) == (0, 1, 4)
    assert after_unsubscribe.engagement_score == 4 - 20
    assert after_unsubscribe.email_consent is False
    clicked = Interaction.objects.get(lead=lead, kind=InteractionKind.EMAIL_CLICK)
    assert clicked.campaign.name == "Newsletter Q3"
    assert clicked.subject == "https://example.vn/guide"
    recipient = EmailRecipient.objects.get(lead=lead)
    assert recipient.opened_at and recipient.clicked_at and recipient.unsubscribed_at


@pytest.mark.django_db
def test_a_click_link_can_only_lead_to_the_emails_own_links(client, sent, email):
    message = sent["thao@vinatech.vn"]
    path = tracking_path(message, "c")
    token = path.split("/")[3]
    # A correctly signed address naming a link the email does not have.
    beyond = reverse("email_tracking:click", args=[token, 7])
    forged = path.replace("/e/c/", "/e/c/x")

    redirected = client.get(path, {"url": "https://evil.example/", "next": "//evil"})
    unknown = client.get(beyond)
    tampered = client.get(forged)
    foreign = client.get("/e/c/https:%2F%2Fevil.example/")

    assert redirected["Location"] == "https://example.vn/guide"
    assert unknown.status_code == 404
    assert tampered.status_code == 404
    assert foreign.status_code == 404


@pytest.mark.django_db
def test_unsubscribe_asks_first_then_stops_later_sends(
    client, sent, email, leads, marketer, mailoutbox, django_capture_on_commit_callbacks
):
    path = tracking_path(sent["thao@vinatech.vn"], "u")

    asked = client.get(path)
    assert asked.status_code == 200
    assert Lead.objects.get(pk=leads["thao"].pk).email_consent is True

    # What a mail client's one-click button sends (RFC 8058).
    with django_capture_on_commit_callbacks(execute=True):
        done = client.post(
            path, "List-Unsubscribe=One-Click", content_type=FORM_ENCODED
        )
    lead = Lead.objects.get(pk=leads["thao"].pk)
    assert done.status_code == 200
    assert "You are unsubscribed" in done.content.decode()
    assert lead.email_consent is False
    assert interactions(lead, InteractionKind.UNSUBSCRIBE) == 1

    later = EmailCampaign.objects.create(
        campaign=email.campaign, segment=email.segment, name="Next", subject="s",
        body="b",
    )  # fmt: skip
    mailoutbox.clear()
    send(later, marketer, django_capture_on_commit_callbacks)
    assert [m.to[0] for m in mailoutbox] == ["someone@example.vn"]


@pytest.mark.django_db
def test_a_bad_tracking_token_is_a_404_and_the_pixel_still_an_image(client):
    assert client.get("/e/u/12:nope/").status_code == 404
    pixel = client.get("/e/o/12:nope/")
    assert pixel.status_code == 200
    assert not Interaction.objects.exists()


# Bounces


@pytest.mark.django_db
def test_a_bounce_report_is_recorded_once_and_keeps_the_address_out(
    client, sent, email, leads, marketer, mailoutbox, django_capture_on_commit_callbacks
):
    header = sent["someone@example.vn"].extra_headers["X-LeadCRM-Recipient"]
    body = {"bounces": [{"recipient": header, "kind": "hard", "reason": "5.1.1"}]}
    url = reverse("email_tracking:bounces")

    refused = client.post(url, body, content_type="application/json",
                          HTTP_AUTHORIZATION="Bearer wrong")  # fmt: skip
    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(2):
            accepted = client.post(
                url, body, content_type="application/json",
                HTTP_AUTHORIZATION="Bearer bounce-secret",
            )  # fmt: skip

    assert refused.status_code == 403
    assert accepted.json() == {"recorded": 1, "unknown": 0}
    lead = Lead.objects.get(pk=leads["anon"].pk)
    assert interactions(lead, InteractionKind.EMAIL_BOUNCE) == 1
    assert EmailRecipient.objects.get(lead=lead).bounce_kind == "hard"

    later = EmailCampaign.objects.create(
        campaign=email.campaign, segment=email.segment, name="Next", subject="s",
        body="b",
    )  # fmt: skip
    mailoutbox.clear()
    send(later, marketer, django_capture_on_commit_callbacks)
    assert [m.to[0] for m in mailoutbox] == ["thao@vinatech.vn"]


@pytest.mark.django_db
def test_the_bounce_command_reads_a_csv_report(sent, leads, tmp_path):
    report = tmp_path / "bounces.csv"
    report.write_text(
        "email,kind,reason\nTHAO@vinatech.vn ,soft,mailbox full\nx@nowhere.vn,hard,\n"
    )

    call_command("import_bounces", str(report))
    call_command("import_bounces", str(report))

    recipient = EmailRecipient.objects.get(lead=leads["thao"])
    assert recipient.bounce_kind == "soft"
    assert interactions(leads["thao"], InteractionKind.EMAIL_BOUNCE) == 1


# Pages


@pytest.mark.django_db
def test_a_marketer_composes_previews_and_test_sends_an_email(
    client, marketer, campaign, segment, leads, mailoutbox
):
    client.force_login(marketer)

    bad = client.post(reverse("emails:create"), {
        "name": "Bad", "campaign": campaign.pk, "segment": segment.pk,
        "subject": "Hi {firstname}", "body": "x",
    })  # fmt: skip
    created = client.post(reverse("emails:create"), {
        "name": "Welcome", "campaign": campaign.pk, "segment": segment.pk,
        "subject": "Hi {first_name|there}", "body": BODY,
    })  # fmt: skip
    email = EmailCampaign.objects.get(name="Welcome")
    page = client.get(email.get_absolute_url(), {"lead": leads["thao"].pk})
    tested = client.post(
        reverse("emails:test", args=[email.pk]),
        {"to": "me@leadcrm.vn", "lead": leads["thao"].pk},
    )

    assert bad.status_code == 400
    assert "Unknown merge field" in bad.content.decode()
    assert created.status_code == 302
    assert page.status_code == 200
    assert "Hi Thảo" in page.content.decode()
    assert tested.status_code == 302
    (test_message,) = mailoutbox
    assert test_message.to == ["me@leadcrm.vn"]
    assert test_message.subject == "[Test] Hi Thảo"
    assert "https://example.vn/guide" in test_message.body  # untracked
    assert "List-Unsubscribe" not in test_message.extra_headers
    assert not EmailRecipient.objects.exists()


@pytest.mark.django_db
def test_the_send_button_starts_sending_and_the_page_shows_progress(
    client, marketer, email, leads, mailoutbox, django_capture_on_commit_callbacks
):
    client.force_login(marketer)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("emails:send", args=[email.pk]))
    progress = client.get(reverse("emails:progress", args=[email.pk]))

    assert response.status_code == 302
    assert len(mailoutbox) == 2
    text = " ".join(progress.content.decode().split())
    assert "100 %" in text
    assert "hx-trigger" not in text  # finished: no more polling


@pytest.mark.django_db
def test_a_sent_email_cannot_be_edited(client, marketer, email):
    EmailCampaign.objects.filter(pk=email.pk).update(status=EmailStatus.SENT)
    client.force_login(marketer)

    assert client.get(reverse("emails:edit", args=[email.pk])).status_code == 404


@pytest.mark.django_db
@pytest.mark.parametrize(
    "name", ["emails:list", "emails:segments", "emails:create", "emails:segment_create"]
)
def test_people_without_a_marketing_role_are_refused(client, make_user, name, email):
    client.force_login(make_user("rep", role="Sales rep"))

    assert client.get(reverse(name)).status_code == 403


@pytest.mark.django_db
def test_the_lists_search_and_say_when_empty(client, marketer, email):
    client.force_login(marketer)

    found = client.get(reverse("emails:list"), {"q": "september"})
    missing = client.get(reverse("emails:list"), {"q": "nothing like it"})

    assert list(found.context["emails"]) == [email]
    assert "No email matches this search" in missing.content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize("model", ["segment", "emailcampaign", "emailrecipient"])
def test_the_admin_lists_and_shows_email_models(
    admin_client, model, sent, django_capture_on_commit_callbacks
):
    from django.apps import apps

    obj = apps.get_model("campaigns", model).objects.first()
    changelist = reverse(f"admin:campaigns_{model}_changelist")

    assert admin_client.get(changelist, {"q": "thao"}).status_code == 200
    change = admin_client.get(reverse(f"admin:campaigns_{model}_change", args=[obj.pk]))
    assert change.status_code == 200


@pytest.mark.django_db
def test_the_segment_page_shows_the_filters_and_the_count(client, marketer, leads):
    segment = Segment.objects.create(name="Consenting", filters={"consent": "yes"})
    client.force_login(marketer)

    response = client.get(reverse("emails:segment_edit", args=[segment.pk]))

    text = " ".join(response.content.decode().split())
    assert response.status_code == 200
    assert 'name="custom"' in text
    assert "3 leads match; 3 can be emailed" in text


@pytest.mark.django_db
def test_an_email_to_a_segment_that_stopped_making_sense_is_not_started(
    email, segment, marketer
):
    Segment.objects.filter(pk=segment.pk).update(filters={"campaign": "999999"})

    with pytest.raises(Exception, match="no longer valid"):
        email_campaign_send(email_campaign_id=email.pk, by=marketer)
    email.refresh_from_db()
    assert email.status == EmailStatus.DRAFT


@pytest.mark.django_db
def test_batches_keep_to_the_rate_limit(
    email, make_lead, mailoutbox, settings, monkeypatch
):
    from campaigns import email_sending

    for n in range(4):
        make_lead(email=f"p{n}@x.vn", custom={"course": "MBA"}, email_consent=True)
    email_recipients_add(email_campaign_id=email.pk)
    EmailCampaign.objects.filter(pk=email.pk).update(status=EmailStatus.SENDING)
    settings.LEADCRM = {**settings.LEADCRM, "EMAIL_RATE_PER_SECOND": 4}
    pauses = []

    class Clock:
        """Time that stands still while sending, so each pause is whole."""

        @staticmethod
        def monotonic():
            return 100.0

        @staticmethod
        def sleep(seconds):
            pauses.append(seconds)

    monkeypatch.setattr(email_sending, "time", Clock)
    more = email_sending.email_batches_run(email_campaign_id=email.pk)

    # Two batches of two at four a second: half a second after each.
    assert pauses == [0.5, 0.5]
    assert more is False
    assert len(mailoutbox) == 4
    assert EmailCampaign.objects.get(pk=email.pk).status == EmailStatus.SENT
