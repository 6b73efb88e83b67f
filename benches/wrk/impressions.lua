-- recordImpressions as a page does on every view: three cards of a list shown to no
-- account, each request for a list of its own (a fresh nonce), so every impression is new.
-- Used by server-cpu.sh with SCRIPT=impressions.lua (BODY is ignored).
local counter = 0
local tid = 0
function setup(thread)
  tid = tid + 1
  thread:set("tid", tid)
end
function init(args)
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  local key = os.getenv("KEY")
  if key and key ~= "" then
    wrk.headers["Authorization"] = "Bearer " .. key
  end
end
-- {"at":0,"profile":"default","stage":"DECISION","language":"en"}, base64url.
local context = "eyJhdCI6MCwicHJvZmlsZSI6ImRlZmF1bHQiLCJzdGFnZSI6IkRFQ0lTSU9OIiwibGFuZ3VhZ2UiOiJlbiJ9"
local seed = os.time() % 65536
function request()
  counter = counter + 1
  local id = context .. "." .. string.format("%04x%04x%08x", seed, tid, counter)
  local body = '{"query":"mutation($id: ID!) { recordImpressions(recommendationId: $id, assetIds: [\\"pricing-sheet\\", \\"case-study-payments-psp-matching\\", \\"case-study-payments-integration\\"]) { recorded } }","variables":{"id":"' .. id .. '"}}'
  return wrk.format(nil, nil, nil, body)
end
