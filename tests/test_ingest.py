import threading
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.utils import timezone

from leads.models import Interaction, Lead, LevelChange
from leads.services import InteractionData, LeadData, lead_ingest

pytestmark = pytest.mark.django_db


def form_submit(key: str | None = None, **kwargs) -> InteractionData:
    return InteractionData(
        kind="form_submit", channel="web_form", idempotency_key=key, **kwargs
    )


def test_a_new_person_becomes_an_iql_lead_with_history():
    result = lead_ingest(
        data=LeadData(email=" Mai.Tran@Example.com ", full_name="Trần Thị Mai"),
        interactions=[form_submit("s:1")],
    )

    lead = Lead.objects.get()
    assert result.created
    assert lead.email == "mai.tran@example.com"
    assert lead.full_name == "Trần Thị Mai"
    assert lead.level == "iql"
    assert lead.interactions.count() == 1
    change = LevelChange.objects.get(lead=lead)
    assert (change.from_level, change.to_level) == ("", "iql")
    assert change.rule == "contact_details_known"


def test_the_same_person_by_email_in_any_form_is_one_lead():
    lead_ingest(data=LeadData(email="an@example.com"), interactions=[form_submit()])
    lead_ingest(
        data=LeadData(email="\u3000AN@EXAMPLE.COM"), interactions=[form_submit()]
    )

    assert Lead.objects.count() == 1
    assert Interaction.objects.count() == 2


def test_the_same_phone_in_any_vietnamese_notation_is_one_lead():
    for phone in ("0912 345 678", "+84 912-345-678", "84912345678", "(091) 234.5678"):
        lead_ingest(data=LeadData(phone=phone), interactions=[form_submit()])

    lead = Lead.objects.get()
    assert lead.phone == "+84912345678"
    assert lead.interactions.count() == 4


def test_a_returning_lead_gains_new_details_and_keeps_known_ones():
    lead_ingest(
        data=LeadData(email="an@example.com", company="VinaTech", job_title="CTO"),
        interactions=[form_submit()],
    )

    result = lead_ingest(
        data=LeadData(
            email="an@example.com", company="", job_title="", phone="0912345678"
        ),
        interactions=[form_submit()],
    )

    lead = Lead.objects.get()
    assert not result.created
    assert lead.company == "VinaTech"
    assert lead.job_title == "CTO"
    assert lead.phone == "+84912345678"
    assert result.updated_fields == ["phone"]
    assert lead.interactions.count() == 2


def test_a_phone_owned_by_another_lead_is_not_stolen():
    lead_ingest(data=LeadData(phone="0912345678"))
    lead_ingest(data=LeadData(email="an@example.com"))

    lead_ingest(data=LeadData(email="an@example.com", phone="0912345678"))

    by_email = Lead.objects.get(email="an@example.com")
    assert by_email.phone == ""
    assert Lead.objects.filter(phone="+84912345678").count() == 1


def test_the_same_idempotency_key_twice_changes_nothing():
    first = lead_ingest(
        data=LeadData(email="an@example.com"), interactions=[form_submit("s:7")]
    )
    second = lead_ingest(
        data=LeadData(email="an@example.com"), interactions=[form_submit("s:7")]
    )

    assert second.lead.pk == first.lead.pk
    assert not second.changed
    assert Interaction.objects.count() == 1


def test_without_email_phone_or_external_id_ingest_is_refused_with_field_errors():
    with pytest.raises(ValidationError) as caught:
        lead_ingest(data=LeadData(email="not an email", phone="12"))

    assert set(caught.value.message_dict) == {"email", "phone"}
    assert Lead.objects.count() == 0


def test_an_invalid_email_beside_a_valid_phone_is_kept_aside():
    lead_ingest(data=LeadData(email="an@@example", phone="0912345678"))

    lead = Lead.objects.get()
    assert lead.email == ""
    assert lead.custom["invalid_email"] == "an@@example"


def test_a_source_system_id_alone_identifies_a_lead():
    lead_ingest(data=LeadData(external_id="abc-1", source="Google"))
    lead_ingest(data=LeadData(external_id="abc-1", city="Hà Nội"))

    lead = Lead.objects.get()
    assert (lead.source, lead.city) == ("Google", "Hà Nội")


def test_utm_and_campaign_keep_first_and_last_touch(web_form):
    campaign = web_form.campaign
    lead_ingest(
        data=LeadData(
            email="an@example.com",
            utm={"utm_source": "facebook"},
            campaign_id=campaign.pk,
        )
    )
    lead_ingest(data=LeadData(email="an@example.com", utm={"utm_source": "zalo"}))

    lead = Lead.objects.get()
    assert lead.first_touch_utm == {"utm_source": "facebook"}
    assert lead.last_touch_utm == {"utm_source": "zalo"}
    assert lead.first_touch_campaign_id == campaign.pk


def test_names_are_stored_nfc_and_searchable_without_diacritics():
    lead_ingest(
        data=LeadData(email="an@example.com", full_name="Nguye\u0302\u0303n An")
    )

    lead = Lead.objects.get()
    assert lead.full_name == "Nguyễn An"
    assert "nguyen an" in lead.search_text


def test_interactions_keep_their_time_and_move_last_interaction():
    earlier = timezone.now() - timedelta(days=3)
    lead_ingest(
        data=LeadData(email="an@example.com"),
        interactions=[form_submit(occurred_at=earlier)],
    )

    lead = Lead.objects.get()
    assert lead.last_interaction_at == earlier
    assert lead.interactions.get().occurred_at == earlier


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_first_submissions_make_one_lead():
    barrier = threading.Barrier(20)
    errors: list[BaseException] = []

    def submit(n: int) -> None:
        try:
            barrier.wait(timeout=10)
            lead_ingest(
                data=LeadData(email="race@example.com", full_name="Lê Văn Tám"),
                interactions=[form_submit(f"race:{n}")],
            )
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=submit, args=(n,)) for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert errors == []
    assert Lead.objects.count() == 1
    assert Interaction.objects.count() == 20
    assert LevelChange.objects.count() == 1


@pytest.mark.parametrize("amount", ["9" * 30, "NaN", "-5", "not a number"])
def test_a_stated_amount_that_cannot_be_stored_is_unknown_and_the_lead_is_kept(
    make_lead, amount
):
    lead = make_lead(
        email="hoa@example.vn", bant={"budget": {"amount": amount, "currency": "VND"}}
    )

    assert lead.bant.get(criterion="budget").amount is None
