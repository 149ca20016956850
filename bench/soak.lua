-- wrk script for the soak benchmark: a mix of what a support chatbot sees. Per 20 requests: 12 first contacts,
-- 4 follow-ups in a known session, 2 customers reading their conversation, 1 agent reading a ticket, 1 agent
-- erasing a conversation. Session and ticket ids come from earlier answers, per wrk thread.
local questions = {
  "Bonjour, où est ma commande %d ?",
  "My parcel %d hasn't been delivered yet",
  "Je voudrais retourner l'article de la commande %d",
  "When will I get my refund for order %d?",
  "Je veux parler à un conseiller, dossier %d",
}
local counter, threads = 0, 0
local sessions, tickets = {}, {}
local token = os.getenv("SOAK_AGENT_TOKEN") or ""

setup = function(thread)
  threads = threads + 1
  thread:set("id", threads)
end

local function pick(list)
  if #list == 0 then return nil end
  return list[math.random(#list)]
end

local function remember(list, value)
  list[#list + 1] = value
  -- A bounded memory of recent ids: old ones may have been purged by the retention job (a 404 is then right).
  if #list > 200 then table.remove(list, 1) end
end

local function chat(session)
  local q = string.format(questions[counter % #questions + 1], counter * 100 + (id or 0))
  local body = '{"message":"' .. q .. '","user_type":"customer"'
  if session then body = body .. ',"session_id":"' .. session .. '"' end
  return wrk.format("POST", "/chat", {["Content-Type"] = "application/json"}, body .. "}")
end

request = function()
  counter = counter + 1
  local slot = counter % 20
  local agent = {["Authorization"] = "Bearer " .. token}
  if slot < 12 then return chat(nil) end
  if slot < 16 then return chat(pick(sessions)) end
  if slot < 18 then
    local s = pick(sessions)
    if s then return wrk.format("GET", "/conversations/" .. s) end
    return chat(nil)
  end
  if slot == 18 then
    local t = pick(tickets)
    if t then return wrk.format("GET", "/tickets/" .. t, agent) end
    return chat(nil)
  end
  local s = pick(sessions)
  if s then return wrk.format("DELETE", "/conversations/" .. s, agent) end
  return chat(nil)
end

response = function(status, headers, body)
  if status ~= 200 or body == nil then return end
  local s = body:match('"session_id":"([^"]+)"')
  if s and body:match('"reply"') then remember(sessions, s) end
  local t = body:match('"ticket_id":"([^"]+)"')
  if t then remember(tickets, t) end
end

-- Requests per status class, summed over threads, for the window's line.
done = function(summary, latency, requests)
  io.write(string.format("soak-errors connect=%d read=%d write=%d status=%d timeout=%d\n",
    summary.errors.connect, summary.errors.read, summary.errors.write, summary.errors.status,
    summary.errors.timeout))
end
