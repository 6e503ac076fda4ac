// The baseline: a bare JS pass-through worker doing what the `proxy` route does.
export default {
  async fetch(request) {
    const url = new URL(request.url);
    const upstream = new URL(url.pathname.replace(/^\/proxy/, "") + url.search, "http://127.0.0.1:27281");
    return fetch(new Request(upstream, request));
  },
};
