-- wrk: POST one small chat request, the same bytes every time.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer {{API_KEY}}"
wrk.body = '{"model": "{{MODEL}}", "messages":[{"role":"user","content":"hello"}], "max_tokens": 16}'
