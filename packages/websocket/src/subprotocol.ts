/**
 * The subprotocol to answer a client that offered `offered` (in its order of preference): the
 * first one the listener accepts, or false to answer none. A client offering nothing is accepted
 * without a subprotocol: MyQtt's noPoll clients request none.
 */
export function chooseSubprotocol(
  offered: ReadonlySet<string>,
  accepted: readonly string[],
): string | false {
  for (const name of offered) {
    if (accepted.includes(name)) return name;
  }
  return false;
}
