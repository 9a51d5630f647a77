"""schemathesis over the service's own OpenAPI schema, against the running server: whatever a client sends that
the schema allows, no answer is a 5xx and no body carries a traceback. (Driven through hypothesis directly: the
schemathesis pytest plugin's fixture loader does not work with this pytest.)"""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings

from service_support import EXAMPLE_TEXT, start_service


def test_no_input_the_schema_allows_gets_a_server_error(tmp_path):
    server, service = start_service(f"sqlite:///{tmp_path / 's.sqlite3'}")
    try:
        with service.http() as http:  # one user with examples, so that requests reach past "no such user"
            http.post("/v1/users/ann/examples", json={"examples": [{"text": EXAMPLE_TEXT}]}).raise_for_status()
        schema = schemathesis.openapi.from_url(f"{service.url}/openapi.json")
        auth = {"Authorization": f"Bearer {service.keys['acme']}"}
        operations = [result.ok() for result in schema.get_all_operations()]
        assert len(operations) >= 10
        seen: dict[str, set[int]] = {}
        def fuzz(label: str, strategy):
            @given(case=strategy)
            @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), database=None)
            def no_server_error(case) -> None:
                response = case.call(headers=auth)
                seen.setdefault(label, set()).add(response.status_code)
                assert response.status_code < 500, (label, response.text[:300])
                assert "Traceback" not in response.text and 'File "' not in response.text

            no_server_error()

        for operation in operations:
            fuzz(operation.label, operation.as_strategy())
        assert len(seen) == len(operations)
        assert any(200 <= status < 300 for statuses in seen.values() for status in statuses)  # it got through too
    finally:
        server.__exit__()
        service.store.close()
