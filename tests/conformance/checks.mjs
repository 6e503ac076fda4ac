// A runner for procedural conformance checks: counts the requests sent (for the access-log
// check) and records each named check's failures, a thrown error counting as one.
export function checkRunner(sendTo) {
  const runner = { results: [], sent: 0 };
  runner.send = (request) => {
    runner.sent++;
    return sendTo(request);
  };
  runner.check = async (name, run) => {
    let failures;
    try {
      failures = await run();
    } catch (error) {
      failures = [`threw: ${error.message}`];
    }
    runner.results.push({ name, failures });
  };
  return runner;
}

/** The access-log records among a runtime's stdout lines (JSON objects with a `request_id`). */
export function accessRecords(lines) {
  return lines.flatMap((line) => {
    try {
      const record = JSON.parse(line.slice(line.indexOf("{")));
      return record.request_id ? [record] : [];
    } catch {
      return [];
    }
  });
}
