/** Runs `fn` after the current test, last registered first; a failing cleanup is ignored. */
export declare function onCleanup(fn: () => unknown): void;
