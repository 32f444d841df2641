/**
 * Why a server could not listen, from Node's error code, in words an operator can act on. Shared
 * by the TCP transport and the HTTP endpoints.
 *
 * @since 0.1.0
 */

/** `in_use`: another process holds the port; `permission`: a privileged port or a forbidden address; `unavailable`: not this machine's address. */
export type Reason = "in_use" | "permission" | "unavailable" | "io"

/** The reason and a message naming `url` (e.g. `tcp://127.0.0.1:26656`). */
export const describe = (url: string, error: { readonly code?: string | undefined; readonly message: string }): { readonly reason: Reason; readonly message: string } => {
  switch (error.code) {
    case "EADDRINUSE":
      return { reason: "in_use", message: `${url} is in use by another process` }
    case "EACCES":
    case "EPERM":
      return { reason: "permission", message: `not allowed to listen on ${url} (ports below 1024 need privileges)` }
    case "EADDRNOTAVAIL":
      return { reason: "unavailable", message: `cannot listen on ${url}: the address is not one of this machine's` }
    default:
      return { reason: "io", message: `cannot listen on ${url}: ${error.message}` }
  }
}
