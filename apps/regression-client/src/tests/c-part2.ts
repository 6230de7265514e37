// Filled by the port of the suite.
export {};
