"""Contact import: the bad-CSV corpus, mapping, duplicates, suppressions, distribution, resume."""

import codecs

import pytest

from campaigns import importer
from campaigns.csvio import CsvFileError
from campaigns.importer import ImportRefused, import_job_create, import_job_run
from campaigns.models import (
    Campaign,
    ImportJob,
    ImportRowError,
    Recipient,
    Suppression,
)
from templates_sync.rendering import surely_renders
from tests.campaigns.conftest import run_import
from tests.factories import make_campaign, make_number, make_template

pytestmark = pytest.mark.django_db

HEADER = "phone,1,2\n"


def recipients(campaign):
    return list(
        Recipient.objects.filter(campaign=campaign)
        .order_by("row_number")
        .values_list("row_number", "phone", "variables")
    )


def problems(job):
    return list(
        ImportRowError.objects.filter(job=job)
        .order_by("row")
        .values_list("row", "kind", "phone", "reason")
    )


def counts(job):
    assert job.accepted + job.rejected + job.duplicates + job.suppressed == job.data_rows
    return (job.data_rows, job.accepted, job.rejected, job.duplicates, job.suppressed)


def test_a_clean_file_imports_every_row_with_its_variables(campaign):
    job = run_import(campaign, HEADER + "9812345678,Asha,A1\n+91 98123 45679,Ravi,R2\n")
    assert job.status == "done"
    assert counts(job) == (2, 2, 0, 0, 0)
    assert (job.encoding, job.delimiter, job.notes) == ("UTF-8", "comma", [])
    assert recipients(campaign) == [
        (2, "+919812345678", {"body.1": "Asha", "body.2": "A1"}),
        (3, "+919812345679", {"body.1": "Ravi", "body.2": "R2"}),
    ]
    campaign.refresh_from_db()
    assert campaign.recipients.count() == 2


def test_utf8_with_bom_finds_the_phone_column(campaign):
    job = run_import(campaign, codecs.BOM_UTF8 + "Phone,1,2\r\n9812345678,Zoë,A1\r\n".encode())
    assert counts(job) == (1, 1, 0, 0, 0)
    assert job.encoding == "UTF-8 with BOM"
    assert recipients(campaign) == [(2, "+919812345678", {"body.1": "Zoë", "body.2": "A1"})]


def test_latin1_bytes_are_read_as_windows_1252_with_a_note(campaign):
    job = run_import(campaign, "phone;1;2\n9812345678;José;Ñ1\n".encode("latin-1"))
    assert counts(job) == (1, 1, 0, 0, 0)
    assert (job.encoding, job.delimiter) == ("Windows-1252", "semicolon")
    assert job.notes == [
        "the file is not UTF-8; it was read as Windows-1252. If names look wrong, save it as "
        "'CSV UTF-8' and upload it again."
    ]
    assert recipients(campaign) == [(2, "+919812345678", {"body.1": "José", "body.2": "Ñ1"})]


def test_bytes_windows_1252_leaves_undefined_mean_latin1(campaign):
    job = run_import(campaign, b"phone,1,2\n9812345678,Jos\xe9\x81,A1\n")
    assert counts(job) == (1, 1, 0, 0, 0)
    assert job.encoding == "Latin-1"
    assert recipients(campaign) == [(2, "+919812345678", {"body.1": "José\x81", "body.2": "A1"})]


def test_cp1252_smart_quotes_and_euro_survive(campaign):
    job = run_import(campaign, "phone,1,2\n9812345678,“Asha”,€5\n".encode("cp1252"))
    assert job.encoding == "Windows-1252"
    assert recipients(campaign) == [(2, "+919812345678", {"body.1": "“Asha”", "body.2": "€5"})]


def test_utf16_tab_separated_excel_unicode_text(campaign):
    job = run_import(campaign, "phone\t1\t2\r\n9812345678\tAsha\tA1\r\n".encode("utf-16"))
    assert counts(job) == (1, 1, 0, 0, 0)
    assert (job.encoding, job.delimiter) == ("UTF-16", "tab")


def test_tabs_are_detected(campaign):
    job = run_import(campaign, "phone\t1\t2\n9812345678\tAsha, Jr.\tA1\n")
    assert job.delimiter == "tab"
    assert recipients(campaign) == [(2, "+919812345678", {"body.1": "Asha, Jr.", "body.2": "A1"})]


def test_blank_lines_are_skipped_not_counted_and_rows_keep_their_file_line(campaign):
    data = "\n\nphone,1,2\n\n9812345678,Asha,A1\n,,\n   \n9812345679,Ravi,R2\n\n"
    job = run_import(campaign, data)
    assert counts(job) == (2, 2, 0, 0, 0)
    assert [row for row, _, _ in recipients(campaign)] == [5, 8]
    assert job.notes == ["2 blank lines before the header were skipped"]


def test_quoted_newlines_stay_in_one_record(campaign):
    data = (
        "phone,1,2,address\n"
        '9812345678,Asha,A1,"12 Main Road\nPune"\n'
        '9812345679,"Ravi\nKumar",R2,x\n'
        "9812345680,Meena,M3,y\n"
    )
    job = run_import(campaign, data)
    assert counts(job) == (3, 2, 1, 0, 0)
    assert recipients(campaign) == [
        (2, "+919812345678", {"body.1": "Asha", "body.2": "A1"}),
        (6, "+919812345680", {"body.1": "Meena", "body.2": "M3"}),
    ]
    assert problems(job) == [
        (
            4,
            "rejected",
            "+919812345679",
            "cannot fill template 'order_update': body.1: must not contain new lines or tabs "
            "(column '1')",
        )
    ]
    assert job.notes == ["columns not used by any template: 'address'"]


def test_a_file_without_a_phone_column_is_refused_whole(campaign):
    with pytest.raises(CsvFileError) as refused:
        run_import(campaign, "name,1,2\nAsha,A1,x\n")
    assert str(refused.value) == (
        "no phone column: name one of phone, phone_number, mobile, whatsapp, number "
        "(columns found: 'name', '1', '2')"
    )
    assert ImportJob.objects.count() == 0
    assert Recipient.objects.count() == 0


@pytest.mark.parametrize("alias", ["Mobile", "PHONE_NUMBER", "Phone Number", "number", "WhatsApp"])
def test_phone_column_aliases(campaign, alias):
    job = run_import(campaign, f"{alias},1,2\n9812345678,Asha,A1\n")
    assert counts(job) == (1, 1, 0, 0, 0)


def test_a_header_only_file_imports_nothing_and_says_so(campaign):
    job = run_import(campaign, HEADER)
    assert job.status == "done"
    assert counts(job) == (0, 0, 0, 0, 0)
    assert job.notes == ["the file has a header but no data rows"]


@pytest.mark.parametrize("data", [b"", b"\n\n  \n", codecs.BOM_UTF8])
def test_an_empty_file_is_refused(campaign, data):
    with pytest.raises(CsvFileError, match=r"^the file is empty$"):
        run_import(campaign, data)
    assert ImportJob.objects.count() == 0


def test_a_binary_file_is_refused(campaign):
    png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x01\x00" + bytes(range(256)) * 4
    with pytest.raises(CsvFileError) as refused:
        run_import(campaign, png, filename="photo.csv")
    assert str(refused.value) == (
        "this is not a CSV text file (it holds binary data): export the sheet as CSV"
    )
    assert ImportJob.objects.count() == 0


def test_invalid_and_duplicate_numbers_are_reported_row_by_row(campaign):
    data = (
        HEADER + "9812345678,Asha,A1\n"
        "12345,Short,S\n"
        "abc,Text,T\n"
        ",Empty,E\n"
        "9.19812E+11,Excel,X\n"
        "+999 123456789,Nowhere,N\n"
        "+91 98123 45678,Again,A2\n"
        "0091-9812345679,Ravi,R2\n"
        "98123456789012345,Long,L\n"
    )
    job = run_import(campaign, data)
    assert counts(job) == (9, 2, 6, 1, 0)
    assert problems(job) == [
        (3, "rejected", "12345", "invalid phone: too short"),
        (4, "rejected", "abc", "invalid phone: not a phone number"),
        (5, "rejected", "", "invalid phone: the phone is empty"),
        (
            6,
            "rejected",
            "9.19812E+11",
            "invalid phone: '9.19812E+11' is a number a spreadsheet rounded: format the "
            "column as text and export again",
        ),
        (7, "rejected", "+999 123456789", "invalid phone: unknown country code"),
        (8, "duplicate", "+919812345678", "duplicate of row 2"),
        (10, "rejected", "98123456789012345", "invalid phone: too long"),
    ]
    assert [phone for _, phone, _ in recipients(campaign)] == ["+919812345678", "+919812345679"]


def test_duplicates_across_batches_and_imports(campaign, monkeypatch):
    monkeypatch.setattr(importer, "BATCH_ROWS", 2)
    first = run_import(
        campaign, HEADER + "9812345678,A,1\n9812345679,B,2\n9812345680,C,3\n9812345678,D,4\n"
    )
    assert counts(first) == (4, 3, 0, 1, 0)
    assert problems(first) == [(5, "duplicate", "+919812345678", "duplicate of row 2")]
    second = run_import(campaign, HEADER + "9812345679,B,2\n9812345681,E,5\n")
    assert counts(second) == (2, 1, 0, 1, 0)
    assert problems(second) == [
        (2, "duplicate", "+919812345679", "already in this campaign (from an earlier import)")
    ]
    campaign.refresh_from_db()
    assert campaign.recipients.count() == 4


def test_a_duplicate_of_a_rejected_row_gets_its_own_chance(campaign):
    job = run_import(campaign, HEADER + "9812345678,,A1\n9812345678,Asha,A1\n")
    assert counts(job) == (2, 1, 1, 0, 0)
    assert recipients(campaign) == [(3, "+919812345678", {"body.1": "Asha", "body.2": "A1"})]


def test_suppressed_numbers_are_counted_and_skipped(campaign, workspace, other_workspace):
    Suppression.objects.create(workspace=workspace, phone="+919812345679", reason="said STOP")
    Suppression.objects.create(workspace=other_workspace, phone="+919812345678")
    job = run_import(campaign, HEADER + "9812345678,A,1\n9812345679,B,2\n+919812345679,B,2\n")
    assert counts(job) == (3, 1, 0, 0, 2)
    assert problems(job) == [
        (3, "suppressed", "+919812345679", "opted out: said STOP"),
        (4, "suppressed", "+919812345679", "opted out: said STOP"),
    ]


def test_formula_like_cells_are_stored_as_data(campaign):
    job = run_import(campaign, HEADER + '9812345678,"=HYPERLINK(""http://x"")",@SUM(A1)\n')
    assert counts(job) == (1, 1, 0, 0, 0)
    assert recipients(campaign) == [
        (2, "+919812345678", {"body.1": '=HYPERLINK("http://x")', "body.2": "@SUM(A1)"})
    ]


def test_a_very_long_line_is_rejected_alone(campaign):
    long_note = "x" * 200_000
    data = HEADER.replace("\n", ",note\n") + (
        f"9812345678,Asha,A1,ok\n9812345679,Ravi,R2,{long_note}\n9812345680,Meena,M3,ok\n"
    )
    job = run_import(campaign, data)
    assert counts(job) == (3, 2, 1, 0, 0)
    assert problems(job) == [(3, "rejected", "", "the line is longer than 65536 characters")]
    assert [row for row, _, _ in recipients(campaign)] == [2, 4]


def test_an_unclosed_quote_loses_only_its_own_row(campaign):
    data = (
        HEADER + '9812345678,Asha,A1\n9812345679,"Ravi,R2\n9812345680,Meena,M3\n9812345681,Om,O4\n'
    )
    job = run_import(campaign, data)
    assert counts(job) == (4, 3, 1, 0, 0)
    assert problems(job) == [(3, "rejected", "", "a quote opened here is never closed")]
    assert [row for row, _, _ in recipients(campaign)] == [2, 4, 5]


def test_a_row_with_more_fields_than_the_header_is_rejected(campaign):
    job = run_import(campaign, HEADER + "9812345678,Sharma, Asha,A1\n9812345679,Ravi,R2,,\n")
    assert counts(job) == (2, 1, 1, 0, 0)
    assert problems(job) == [
        (
            2,
            "rejected",
            "9812345678",
            "the row has 4 fields and the header 3: a value holding the delimiter must be quoted",
        )
    ]


def test_a_missing_column_rejects_rows_naming_the_parameter(campaign):
    job = run_import(campaign, "phone,1\n9812345678,Asha\n")
    assert counts(job) == (1, 0, 1, 0, 0)
    assert problems(job) == [
        (
            2,
            "rejected",
            "+919812345678",
            "cannot fill template 'order_update': body.2: missing value "
            "(no column 'body.2' or 'body_2' or '2' or 'var2')",
        )
    ]
    assert job.notes == [
        "template 'order_update': body.2: no column 'body.2' or 'body_2' or '2' or 'var2' "
        "(rows assigned to it are rejected)"
    ]


def test_var_columns_header_and_button_map_by_name(workspace, number):
    template = make_template(
        workspace=workspace,
        name="sale",
        components=[
            {"type": "HEADER", "format": "IMAGE"},
            {"type": "BODY", "text": "Hi {{1}}, {{2}} off"},
            {"type": "BUTTONS", "buttons": [{"type": "URL", "url": "https://x.in/{{1}}"}]},
        ],
    )
    campaign = make_campaign(workspace=workspace, numbers=[number], templates=[template])
    job = run_import(
        campaign, "Mobile,VAR1,var2,Header,Button\n9812345678,Asha,20%,https://x.in/a.png,s/1\n"
    )
    assert counts(job) == (1, 1, 0, 0, 0)
    assert recipients(campaign)[0][2] == {
        "header.1": "https://x.in/a.png",
        "body.1": "Asha",
        "body.2": "20%",
        "button.0": "s/1",
    }


def test_named_parameters_map_by_column_name_or_by_variable_mapping(workspace, number):
    named = make_template(
        workspace=workspace,
        name="welcome",
        body="Hi {{first_name}}, code {{code}}",
        parameter_format="NAMED",
    )
    campaign = make_campaign(workspace=workspace, numbers=[number], templates=[named])
    campaign.variable_mapping = {str(named.pk): {"body.code": "Coupon"}}
    campaign.save()
    job = run_import(campaign, "phone,First Name,coupon,code\n9812345678,Asha,FALL25,ignored\n")
    assert counts(job) == (1, 1, 0, 0, 0)
    assert recipients(campaign)[0][2] == {"body.first_name": "Asha", "body.code": "FALL25"}
    assert job.notes == ["columns not used by any template: 'code'"]


def test_marketing_templates_are_not_sent_to_us_numbers(workspace, number):
    promo = make_template(workspace=workspace, name="promo", category="MARKETING")
    campaign = make_campaign(workspace=workspace, numbers=[number], templates=[promo])
    job = run_import(campaign, HEADER + "+1 415 555 0100,Bob,B1\n9812345678,Asha,A1\n")
    assert counts(job) == (2, 1, 1, 0, 0)
    assert problems(job) == [
        (
            2,
            "rejected",
            "+14155550100",
            "template 'promo' is a marketing template and Meta does not deliver marketing "
            "templates to US (+1) numbers",
        )
    ]


def test_default_region_comes_from_settings(campaign, settings):
    settings.DEFAULT_PHONE_REGION = "GB"
    job = run_import(campaign, HEADER + "07400 123456,Ann,A1\n")
    assert counts(job) == (1, 1, 0, 0, 0)
    assert recipients(campaign)[0][1] == "+447400123456"


def test_templates_get_contacts_by_weight_and_numbers_evenly(workspace):
    numbers = [
        make_number(workspace=workspace, label="n1", phone_number_id="201"),
        make_number(workspace=workspace, label="n2", phone_number_id="202"),
    ]
    a, b, c = (make_template(workspace=workspace, name=name) for name in ("a", "b", "c"))
    campaign = make_campaign(
        workspace=workspace, numbers=numbers, templates=[(a, 3), (b, 2), (c, 1)]
    )
    rows = "".join(f"98123450{i:02d},N{i},X{i}\n" for i in range(12))
    job = run_import(campaign, HEADER + rows)
    assert counts(job) == (12, 12, 0, 0, 0)
    assigned = list(
        Recipient.objects.filter(campaign=campaign)
        .order_by("row_number")
        .values_list("template__name", "number__label")
    )
    assert [name for name, _ in assigned] == list("abacba" * 2)
    assert [label for _, label in assigned] == ["n1", "n2"] * 6

    # A second import continues the split where the first left it.
    more = "".join(f"98123451{i:02d},M{i},Y{i}\n" for i in range(6))
    run_import(campaign, HEADER + more)
    by_template = dict(
        Recipient.objects.filter(campaign=campaign)
        .values_list("template__name")
        .annotate(n=__import__("django.db.models", fromlist=["Count"]).Count("id"))
        .order_by()
    )
    assert by_template == {"a": 9, "b": 6, "c": 3}


def test_the_same_file_gives_the_same_split(workspace):
    number = make_number(workspace=workspace)
    a, b = (
        make_template(workspace=workspace, name="a"),
        make_template(workspace=workspace, name="b"),
    )
    rows = HEADER + "".join(f"98123450{i:02d},N{i},X{i}\n" for i in range(7))
    splits = []
    for name in ("first", "second"):
        campaign = make_campaign(
            workspace=workspace, numbers=[number], templates=[(a, 2), (b, 1)], name=name
        )
        run_import(campaign, rows)
        splits.append(
            list(
                Recipient.objects.filter(campaign=campaign)
                .order_by("row_number")
                .values_list("phone", "template__name")
            )
        )
    assert splits[0] == splits[1]
    assert [name for _, name in splits[0]] == list("abaabaa")


@pytest.mark.parametrize("status", ["running", "completed", "cancelled", "failed"])
def test_import_is_refused_unless_draft_scheduled_or_paused(campaign, status):
    Campaign.objects.filter(pk=campaign.pk).update(status=status)
    campaign.refresh_from_db()
    with pytest.raises(ImportRefused) as refused:
        run_import(campaign, HEADER + "9812345678,Asha,A1\n")
    assert str(refused.value) == (
        f"the campaign is {status}: contacts can be added only to a draft, scheduled or "
        "paused campaign"
    )
    assert ImportJob.objects.count() == 0
    assert Recipient.objects.count() == 0


@pytest.mark.parametrize("status", ["draft", "scheduled", "paused"])
def test_import_is_allowed_into_draft_scheduled_and_paused(campaign, status):
    Campaign.objects.filter(pk=campaign.pk).update(status=status)
    campaign.refresh_from_db()
    assert counts(run_import(campaign, HEADER + "9812345678,Asha,A1\n")) == (1, 1, 0, 0, 0)


def test_a_retried_job_resumes_after_its_last_committed_line(campaign, monkeypatch):
    monkeypatch.setattr(importer, "BATCH_ROWS", 2)
    data = (HEADER + "9812345678,A,1\n9812345679,B,2\n9812345680,C,3\n9812345681,D,4\n").encode()
    job = import_job_create(campaign=campaign, user=None, filename="c.csv", size=len(data))
    calls = []
    real_write = importer._Importer.write

    def crash_after_first_batch(self, batch, bytes_read):
        calls.append(batch.last_line)
        if len(calls) == 2:
            raise RuntimeError("worker killed")
        real_write(self, batch, bytes_read)

    monkeypatch.setattr(importer._Importer, "write", crash_after_first_batch)
    import io

    with pytest.raises(RuntimeError):
        import_job_run(job=job, opener=lambda: io.BytesIO(data))
    job.refresh_from_db()
    assert (job.status, job.processed_line, job.accepted) == ("running", 3, 2)

    monkeypatch.setattr(importer._Importer, "write", real_write)
    job = import_job_run(job=job, opener=lambda: io.BytesIO(data))
    assert job.status == "done"
    assert counts(job) == (4, 4, 0, 0, 0)
    assert [row for row, _, _ in recipients(campaign)] == [2, 3, 4, 5]


# --- the checking thread (check_rows runs one batch ahead of the writes) ---------------

SIX_ROWS = HEADER + "".join(f"98123456{n:02d},N{n},{n}\n" for n in range(6))


def _checker_threads():
    import threading

    return [t for t in threading.enumerate() if t.name.startswith("import-check")]


def test_an_error_writing_batch_n_keeps_earlier_batches_and_stops_the_checker(
    campaign, monkeypatch
):
    monkeypatch.setattr(importer, "BATCH_ROWS", 2)
    data = SIX_ROWS.encode()
    job = import_job_create(campaign=campaign, user=None, filename="c.csv", size=len(data))
    checked, written = [], []
    real_check, real_write = importer.check_rows, importer._Importer.write

    def check(records, **kwargs):
        checked.append([record.line for record in records])
        return real_check(records, **kwargs)

    def write(self, batch, bytes_read):
        if len(written) == 2:
            # At most the next batch is checked ahead of the one being written.
            assert len(checked) <= 4
            raise RuntimeError("database gone")
        written.append(batch.last_line)
        real_write(self, batch, bytes_read)

    monkeypatch.setattr(importer, "check_rows", check)
    monkeypatch.setattr(importer._Importer, "write", write)
    import io

    with pytest.raises(RuntimeError, match="database gone"):
        import_job_run(job=job, opener=lambda: io.BytesIO(data))
    assert _checker_threads() == []
    job.refresh_from_db()
    assert (job.status, job.processed_line, job.data_rows, job.accepted) == ("running", 5, 4, 4)
    assert [row for row, _, _ in recipients(campaign)] == [2, 3, 4, 5]
    assert checked[:3] == [[2, 3], [4, 5], [6, 7]]

    monkeypatch.setattr(importer._Importer, "write", real_write)
    job = import_job_run(job=job, opener=lambda: io.BytesIO(data))
    assert job.status == "done"
    assert counts(job) == (6, 6, 0, 0, 0)
    assert [row for row, _, _ in recipients(campaign)] == [2, 3, 4, 5, 6, 7]
    campaign.refresh_from_db()
    assert campaign.recipients.count() == 6


def test_an_error_in_the_checker_fails_the_run_and_keeps_earlier_batches(campaign, monkeypatch):
    monkeypatch.setattr(importer, "BATCH_ROWS", 2)
    data = SIX_ROWS.encode()
    job = import_job_create(campaign=campaign, user=None, filename="c.csv", size=len(data))
    real_check = importer.check_rows

    def check(records, **kwargs):
        if records and records[0].line == 4:
            raise ValueError("checker broke")
        return real_check(records, **kwargs)

    monkeypatch.setattr(importer, "check_rows", check)
    import io

    with pytest.raises(ValueError, match="checker broke"):
        import_job_run(job=job, opener=lambda: io.BytesIO(data))
    assert _checker_threads() == []
    job.refresh_from_db()
    assert (job.status, job.processed_line, job.accepted) == ("running", 3, 2)


def test_an_error_reading_the_file_still_commits_the_batches_read_whole(campaign, monkeypatch):
    monkeypatch.setattr(importer, "BATCH_ROWS", 2)
    data = SIX_ROWS.encode()
    job = import_job_create(campaign=campaign, user=None, filename="c.csv", size=len(data))
    real_batches = importer._batches

    def batches(*args):
        source = real_batches(*args)
        yield next(source)
        yield next(source)
        raise OSError("upload unreadable")

    monkeypatch.setattr(importer, "_batches", batches)
    import io

    with pytest.raises(OSError, match="upload unreadable"):
        import_job_run(job=job, opener=lambda: io.BytesIO(data))
    assert _checker_threads() == []
    job.refresh_from_db()
    assert (job.status, job.processed_line, job.accepted) == ("running", 5, 4)


def test_check_rows_gives_the_reasons_process_stores(campaign):
    from campaigns.csvio import Record

    records = [
        Record(2, ["9812345678", "A", "1"]),
        Record(3, [], "unreadable: boom"),
        Record(4, ["9812345679", "B", "2", "extra"]),
        Record(5, ["12345", "C", "3"]),
        Record(6, [" '+91 98123 45680 ", "D", "4", " "]),
    ]
    rejected, valid = importer.check_rows(records, phone_index=0, width=3, region="IN")
    assert rejected == [
        (3, "", "unreadable: boom"),
        (
            4,
            "9812345679",
            "the row has 4 fields and the header 3: a value holding the delimiter must be quoted",
        ),
        (5, "12345", "invalid phone: too short"),
    ]
    assert [(record.line, phone) for record, phone in valid] == [
        (2, "+919812345678"),
        (6, "+919812345680"),
    ]


# --- surely_renders: the cheap test that lets a row skip render_components -------------


class _Tpl:
    def __init__(self, components, parameter_format="NAMED"):
        from templates_sync.rendering import parse_parameters

        self.components = components
        self.parameter_format = parameter_format
        self.parameters = parse_parameters(components, parameter_format)


_TEMPLATES = [
    _Tpl([{"type": "BODY", "text": "Hi {{first_name}}, your code is {{code}}"}]),
    _Tpl([{"type": "body", "text": "{{ a }}{{a}} {{b}} {{a}} {{{{c}}}}"}]),
    _Tpl([{"type": "BODY", "text": "Hi {{1}}, order {{2}}"}], "POSITIONAL"),
    _Tpl([{"type": "BODY", "text": "x" * 1000 + " {{1}} {{1}}"}], "POSITIONAL"),
    _Tpl([{"type": "BODY", "text": "no variables"}, {"type": "FOOTER", "text": "bye"}]),
    _Tpl([{"type": "BODY", "text": "y" * 1030}]),
    _Tpl(
        [{"type": "HEADER", "format": "TEXT", "text": "Hi {{name}}"}, {"type": "BODY", "text": "b"}]
    ),
    _Tpl([{"type": "HEADER", "format": "IMAGE"}, {"type": "BODY", "text": "{{1}}"}], "POSITIONAL"),
    _Tpl(
        [
            {"type": "BODY", "text": "Track {{1}}"},
            {"type": "BUTTONS", "buttons": [{"type": "URL", "url": "https://x.io/{{1}}"}]},
        ],
        "POSITIONAL",
    ),
]
_VALUES = [
    "Asha",
    "",
    " ",
    " padded ",
    "two\nlines",
    "tab\there",
    "cr\rhere",
    "five     spaces",
    "four    spaces",
    "z" * 10,
    "z" * 12,
    "z" * 600,
    "=cmd()",
]


def test_surely_renders_says_true_only_when_render_components_succeeds():
    import itertools
    import random

    from templates_sync.rendering import RenderError, render_components

    rng = random.Random(5)
    said_true = 0
    for template in _TEMPLATES:
        renders = surely_renders(template)
        keys = list(template.parameters)
        cases = (
            list(itertools.product([*_VALUES, None], repeat=len(keys))) if len(keys) <= 2 else []
        )
        cases += [tuple(rng.choice([*_VALUES, None]) for _ in keys) for _ in range(300)]
        for case in cases:
            values = {
                key: value for key, value in zip(keys, case, strict=True) if value is not None
            }
            try:
                render_components(template, values)
                ok = True
            except RenderError:
                ok = False
            if renders(values):
                said_true += 1
                assert ok, (template.components, values)
    assert said_true > 100


def test_surely_renders_takes_the_cheap_path_for_plain_body_templates():
    plain = surely_renders(_TEMPLATES[0])
    assert plain({"body.first_name": "Asha", "body.code": "A1"})
    assert not plain({"body.first_name": "Asha"})
    for header_or_button in _TEMPLATES[6:]:
        values = {key: "ok" for key in header_or_button.parameters}
        assert not surely_renders(header_or_button)(values)
    assert not surely_renders(_TEMPLATES[5])({})  # the static body is too long
