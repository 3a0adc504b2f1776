"""schemathesis hooks for scripts/fuzz-api.sh.

`follow=true` (on GET /api/v1/events and GET /api/v1/runs/{id}/logs) turns the answer into a live
Server-Sent Events stream that ends only when the client goes away, so a fuzzer's request would only
ever end by its timeout. Those cases are left out; every other value of `follow` is fuzzed, and the
stream itself is tested by the Swift suites.
"""

import schemathesis


@schemathesis.hook
def filter_query(context, query):
    return not (isinstance(query, dict) and str(query.get("follow")).lower() == "true")
