-- wrk script: POST customer messages to the REST API, spread over many
-- conversations, mixing intents, FAQ questions and both languages.
local texts = {
  "hello",
  "what are your opening hours",
  "How long does shipping take?",
  "Do you offer gift wrapping?",
  "我想退货",
  "你们几点开门",
  "which payment methods do you accept",
  "满多少包邮？",
}
-- BENCH_PREFIX keeps the conversations of two wrk runs apart.
local prefix = os.getenv("BENCH_PREFIX") or "bench"
local counter = 0
local next_thread = 0

function setup(thread)
  thread:set("thread_id", next_thread)
  next_thread = next_thread + 1
end

function request()
  counter = counter + 1
  local conversation = prefix .. "-" .. thread_id .. "-" .. (counter % 500)
  local text = texts[(counter % #texts) + 1]
  local body = '{"text":"' .. text .. '"}'
  local headers = { ["Content-Type"] = "application/json" }
  return wrk.format("POST", "/api/v1/conversations/" .. conversation .. "/messages", headers, body)
end

function response(status, headers, body)
  if status ~= 200 then
    io.stderr:write("unexpected status " .. status .. ": " .. body .. "\n")
  end
end
