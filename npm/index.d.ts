/** Options for {@link init}. */
export interface InitOptions {
  /** The site's domain as registered with the collector, e.g. `"example.com"`. Default: `location.hostname`. */
  site?: string;
  /** The collector's event URL, e.g. `"https://stats.example.com/api/event"`. Default: `"/api/event"` (same origin). */
  endpoint?: string;
  /** Count changes of `location.hash` as page views (hash routing). Default `false`. */
  hashRouting?: boolean;
  /** Send an `Outbound Link: Click` event (prop `url`) for clicks on links to other hosts. Default `false`. */
  outboundLinks?: boolean;
  /** Send a `File Download` event (prop `url`) for clicks on links to files (pdf, zip, …). Default `false`. */
  fileDownloads?: boolean;
  /** Send a `404` event (prop `path`) when the page's HTTP status was 404. Default `false`. */
  notFound?: boolean;
  /** Send from `localhost` and loopback addresses too (skipped by default). */
  allowLocalhost?: boolean;
}

/** A custom property value: nested objects and arrays are not carried (the event is dropped). */
export type PropValue = string | number | boolean | null | undefined;

export interface TrackOptions {
  /** Revenue of this event; `currency` is an ISO-4217 code such as `"EUR"`. */
  revenue?: { amount: number; currency: string };
  /**
   * `false`: the event is not an interaction (a scroll mark, a video that
   * started by itself), so a visit with it and one page view still counts
   * as a bounce. Default `true`.
   */
  interactive?: boolean;
}

/**
 * Starts the beacon: loads the WASM, sends the first page view and hooks
 * `history.pushState`/`replaceState`, `popstate` (and `hashchange` with
 * `hashRouting`); when a view ends (hidden, left, or the app's next view)
 * it sends the view's engagement (time visible and focused, deepest
 * scroll). Calling it again returns the same promise. The promise
 * never rejects (nothing the beacon does throws into the page); it resolves
 * to `true` when the beacon is on, and to `false` when it will send
 * nothing: on a server (SSR), when the WASM could not load (blocked by a
 * Content-Security-Policy without `'wasm-unsafe-eval'`, offline), on
 * `localhost` without `allowLocalhost`, or with
 * `localStorage.tallymark_ignore` set.
 */
export function init(options?: InitOptions): Promise<boolean>;

/**
 * Sends the custom event `name`. Props are checked against the collector's
 * limits (at most 30, keys ≤ 64 bytes, string values ≤ 256 bytes, finite
 * numbers) before sending; an event that breaks one is dropped. Calls made
 * before `init` finished are queued.
 */
export function track(name: string, props?: Record<string, PropValue>, options?: TrackOptions): void;

/** Sends a page view of the current URL now (unless it is the URL counted last). */
export function pageview(): void;
