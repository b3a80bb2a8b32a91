/** A flow's JSON state, and every stored JSON form: a plain object whose values are JSON. */
export type JsonObject = { [key: string]: unknown };
