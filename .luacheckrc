-- luacheck for sarye plugins (`sarye plugin lint`, and scripts/test): the
-- globals of the plugin sandbox, nothing else. A plugin that writes a
-- global, reads one the sandbox does not have, or leaves a variable unused
-- is told before the server is.
std = "min"
max_line_length = false
-- what the sandbox gives a plugin (core/lua/host.lua, `globals`)
read_globals = {
  "assert", "error", "ipairs", "next", "pairs", "pcall", "select", "tonumber", "tostring", "type", "unpack",
  "xpcall", "rawequal", "rawget", "setmetatable", "getmetatable", "print", "_VERSION",
  string = { other_fields = true }, table = { other_fields = true }, math = { other_fields = true },
  os = { fields = { "time", "date", "clock" } },
  sarye = { other_fields = true },
}
-- The sandbox has no writable globals: every assignment to one is a bug.
allow_defined_top = false
-- rules have fixed signatures (case, input, ctx): an unused one is normal
unused_args = false
files["plugins/sarye.d.lua"] = { ignore = { ".*" } }
