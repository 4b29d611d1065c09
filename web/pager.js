// Cursor pagination for a list page: the cursors of the pages above the one shown, so the
// page can go older (the API's next_cursor) and back newer without loading everything. A
// list of 10,000 activities costs one page (PAGE_SIZE rows) per view.

export const PAGE_SIZE = 50;

export class CursorPager {
  constructor() { this.reset(); }
  reset() { this.stack = [null]; this.next = null; }
  get cursor() { return this.stack[this.stack.length - 1]; }
  get number() { return this.stack.length; }   // 1-based page number
  get hasNewer() { return this.stack.length > 1; }
  get hasOlder() { return !!this.next; }
  older() { if (this.next) this.stack.push(this.next); }
  newer() { if (this.stack.length > 1) this.stack.pop(); }
  // The query parameters for the page shown.
  params() { return { limit: PAGE_SIZE, cursor: this.cursor }; }
}
