# Reads the whole output of scripts/bench and prints one Markdown table:
# each measure with coapkit's figure, the reference measured in the same
# run (libcoap, the bare UDP ceiling, Mosquitto) and their ratio, so that
# the table holds on a noisy machine. Rows whose benchmark did not run
# (or failed) are left out. Input: the "bench ..." and "pubsub ..."
# machine lines the benchmarks print; everything else is ignored.

function kv(start,    i, p) {
  delete v
  for (i = start; i <= NF; i++) {
    p = index($i, "=")
    if (p > 0)
      v[substr($i, 1, p - 1)] = substr($i, p + 1)
  }
}

function row(measure, ours, ref, refname, ratio) {
  rows[++nrows] = sprintf("| %s | %s | %s | %s |", measure, ours,
    ref == "" ? "—" : ref " (" refname ")", ratio == "" ? "—" : ratio)
}

# An integer with thousands separators (mawk has no %'d).
function f0(x,    s, out) {
  s = sprintf("%d", x + 0.5)
  out = ""
  while (length(s) > 3) {
    out = "," substr(s, length(s) - 2) out
    s = substr(s, 1, length(s) - 3)
  }
  return s out
}
function f1(x) { return sprintf("%.1f", x) }
function f2(x) { return sprintf("%.2f", x) }

$1 == "bench" && $2 == "codec" && NF >= 5 {
  kv(4)
  if ("libcoap_ns" in v)
    row("codec: " $3, f1(v["ns"]) " ns", f1(v["libcoap_ns"]) " ns", "libcoap",
      f2(v["libcoap_ns"] / v["ns"]) \
      (v["libcoap_ns"] + 0 >= v["ns"] + 0 ? "× faster" : "× as fast"))
}

$1 == "bench" && $2 == "observers" {
  kv(3)
  if (v["ceiling_rate"] > 0)
    row("observers: " v["n"] " " toupper(v["type"]) " notifications/s" \
        (v["dead"] > 0 ? ", " v["dead"] " of 200 sockets dead" : ""),
      f0(v["rate"]), f0(v["ceiling_rate"]), "bare sendmmsg",
      f2(v["rate"] / v["ceiling_rate"]) " of the ceiling")
  if (v["type"] == "non" && v["dead"] == 0) {
    row("observers: " v["n"] ", server heap per observer", \
      v["bytes_per_observer"] " B", "256 B", "target", "")
    row("observers: heap allocations per notification round", \
      v["allocs"], "", "", "")
  }
}

$1 == "bench" && $2 == "server" && $3 != "ratio" {
  kv(4)
  srv_rps[$3] += v["rps"]; srv_cpu[$3] += v["cpu_us_per_req"]
  srv_cli[$3] += v["client_cpu_us_per_req"]; srv_n[$3]++
}

$1 == "bench" && $2 == "post" && $3 == "summary" {
  kv(4)
  row("sustained POST / GET req/s on coapd", f0(v["post_rps"]) " / " \
    f0(v["get_rps"]), "", "", f2(v["ratio"]))
}

# bench/workers_scaling.sh: coapd --workers 2 over 1, beside udp-echo's
# 2 threads over 1, under the same two-thread load.
$1 == "bench" && $2 == "workers" && $3 == "ratio" {
  kv(4)
  row("coapd --workers 2 over --workers 1, req/s", f2(v["coapd"]) "×",
    f2(v["echo"]) "×", "udp-echo 2 threads over 1",
    sprintf("%.0f %% of the echo's gain",
      v["echo"] > 1 ? 100 * (v["coapd"] - 1) / (v["echo"] - 1) : 0))
}

$1 == "bench" && $2 == "dtls" && $3 ~ /^server=/ {
  kv(3)
  d_hs[v["server"]] = v["handshakes_per_s"]
  d_mem[v["server"]] = v["bytes_per_session"]
  d_up[v["server"]] = v["sessions_up"]
  if ("requests_per_s" in v)
    d_rps[v["server"]] = v["requests_per_s"]
  if ("server_cpu_us_per_request" in v)
    d_cpu[v["server"]] = v["server_cpu_us_per_request"]
}

$1 == "block2" && $2 ~ /^server=/ {
  kv(2)
  if (v["ok"] > 0) {
    b2_wall[v["server"], v["client"]] = v["wall_s"]
    b2_cpu[v["server"], v["client"]] = v["server_cpu_s"]
    b2_size = v["size"]
  }
}

$1 == "pubsub" && $2 ~ /^system=/ {
  kv(2)
  if (("error" in v) || !("window" in v))
    next
  key = v["n"] SUBSEP v["qos"]
  ps[v["system"], key] = v["delivered_per_s"]
  ps99[v["system"], key] = v["p99_us"]
  if (!(key in ps_seen)) {
    ps_seen[key] = 1
    ps_keys[++nps] = key
  }
}

$1 == "device_telemetry" && $3 ~ /^type=/ {
  kv(2)
  row("device telemetry: " v["devices"] " devices, " v["type"] \
    " 2.04/s into Mosquitto", f0(v["per_s"]), "", "", "")
}

END {
  if (srv_n["coapd"] > 0) {
    c = srv_rps["coapd"] / srv_n["coapd"]
    cc = srv_cpu["coapd"] / srv_n["coapd"]
    if (srv_n["libcoap"] > 0) {
      l = srv_rps["libcoap"] / srv_n["libcoap"]
      lc = srv_cpu["libcoap"] / srv_n["libcoap"]
      row("GET req/s, 64 in flight", f0(c), f0(l), "libcoap", f2(c / l) "×")
      row("server CPU per GET", f2(cc) " µs", f2(lc) " µs", "libcoap",
        f2(lc / cc) "× less")
    }
    if (srv_n["echo"] > 0) {
      e = srv_rps["echo"] / srv_n["echo"]
      ec = srv_cpu["echo"] / srv_n["echo"]
      row("GET req/s against the bare UDP ceiling", f0(c), f0(e), "udp-echo",
        f2(c / e) " of it")
      row("server CPU per GET against the ceiling", f2(cc) " µs",
        f2(ec) " µs", "udp-echo", f2(cc / ec) "×")
    }
    cl = srv_cli["coapd"] / srv_n["coapd"]
    row("coap-bench's own CPU per request (driving coapd)", f2(cl) " µs",
      f2(cc) " µs", "coapd's", f2(cl / cc) "×")
  }
  if (d_hs["coapd"] > 0 && d_hs["libcoap"] > 0) {
    row("DTLS PSK full handshakes/s", f0(d_hs["coapd"]), f0(d_hs["libcoap"]),
      "libcoap", f2(d_hs["coapd"] / d_hs["libcoap"]) "×")
    if (d_mem["coapd"] > 0 && d_mem["libcoap"] > 0)
      row("DTLS memory per session (" d_up["coapd"] " sessions)",
        f0(d_mem["coapd"]) " B", f0(d_mem["libcoap"]) " B", "libcoap",
        f2(d_mem["libcoap"] / d_mem["coapd"]) "× less; Californium ~3,000 B")
    if (d_rps["coapd"] > 0 && d_rps["libcoap"] > 0)
      row("DTLS requests/s over established sessions", f0(d_rps["coapd"]),
        f0(d_rps["libcoap"]), "libcoap",
        f2(d_rps["coapd"] / d_rps["libcoap"]) "×")
    if (d_cpu["coapd"] > 0 && d_cpu["libcoap"] > 0)
      row("DTLS server CPU per request over established sessions",
        f1(d_cpu["coapd"]) " µs", f1(d_cpu["libcoap"]) " µs", "libcoap",
        f2(d_cpu["libcoap"] / d_cpu["coapd"]) "× less")
  }
  split("coap coap-client", b2c, " ")
  for (i = 1; i <= 2; i++) {
    c = b2c[i]
    if (b2_cpu["coapkit", c] > 0 && b2_cpu["libcoap", c] > 0)
      row("Block2 " f0(b2_size / 1048576) " MiB download with " c \
        ": wall s, server CPU s", f2(b2_wall["coapkit", c]) " s, " \
        f2(b2_cpu["coapkit", c]) " s", f2(b2_wall["libcoap", c]) " s, " \
        f2(b2_cpu["libcoap", c]) " s", "libcoap coap-server",
        f2(b2_cpu["libcoap", c] / b2_cpu["coapkit", c]) "× less CPU")
  }
  for (i = 1; i <= nps; i++) {
    k = ps_keys[i]
    split(k, nq, SUBSEP)
    if (ps["coapd", k] > 0 && ps["mosquitto", k] > 0)
      row("pub/sub deliveries/s, 1 publisher, " nq[1] " subscribers, QoS " \
        nq[2], f0(ps["coapd", k]) " (p99 " f0(ps99["coapd", k]) " µs)",
        f0(ps["mosquitto", k]) " (p99 " f0(ps99["mosquitto", k]) " µs)",
        "Mosquitto", f2(ps["coapd", k] / ps["mosquitto", k]) "×")
  }
  print "| measure | coapkit | reference (same run) | ratio |"
  print "|---|---|---|---|"
  for (i = 1; i <= nrows; i++)
    print rows[i]
}
