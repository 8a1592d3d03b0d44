"""A bounded schemathesis run over the hub's /openapi.json, with and without
a device token, finds no 5xx."""

import warnings

import httpx
import pytest

from .test_api import Api


@pytest.fixture
def api(hub, kiosk):
    a = Api(hub, kiosk)
    yield a
    a.client.close()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_generated_requests_never_cause_a_server_error(hub, api):
    """A bounded schemathesis run over /openapi.json, with and without a token."""
    import schemathesis  # a test dependency (pyproject.toml [test]): never skipped
    from hypothesis import HealthCheck, given, settings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        schema = schemathesis.openapi.from_url(hub.url + "/openapi.json", verify=False)
    failures = []
    for result in schema.get_all_operations():
        operation = result.ok()

        @settings(max_examples=25, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def check(case):
            for headers in ({"Authorization": f"Bearer {api.token}"}, {}):
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    response = case.call(base_url=hub.url, headers=headers, verify=False, timeout=10)
                if response.status_code >= 500:
                    failures.append(f"{case.method} {case.path}: {response.status_code}")

        check()
    assert not failures, failures[:5]
    assert httpx.get(hub.url + "/v1/health", verify=False).status_code == 200
