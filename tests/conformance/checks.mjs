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
