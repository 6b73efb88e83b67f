-- Collects the recommendationIds of the lists a server answers with: POSTs BODY_FILE (a
-- recommendations query that selects recommendationId) and appends each id to
-- IDS_FILE.THREAD, one per line. Every answer's id is new, cached answers too.
-- Each thread's number (1, 2, ...), set by setup() as a global of the thread's state.
threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end
function init(args)
  local f = io.open(os.getenv("BODY_FILE"), "r")
  wrk.method = "POST"
  wrk.body = f:read("*a")
  f:close()
  wrk.headers["Content-Type"] = "application/json"
  out = io.open(os.getenv("IDS_FILE") .. "." .. tid, "w")
end
function response(status, headers, body)
  local id = string.match(body, '"recommendationId":"([^"]+)"')
  if id then
    out:write(id, "\n")
    out:flush()
  end
end
