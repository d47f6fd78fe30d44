"""The API tokens page points to the API's description and says how to send a token."""

import html


def test_the_tokens_page_links_the_openapi_document_and_shows_a_bearer_header(user_client):
    page = html.unescape(user_client.get("/tokens").content.decode())

    assert '<a href="/api/openapi.json">OpenAPI document</a>' in page
    assert 'curl -H "Authorization: Bearer <token>" http://testserver/api/imports' in page
    assert user_client.get("/api/openapi.json").json()["openapi"].startswith("3.")
