/**
 * The identity service's expected outcomes, as typed errors the API maps to its statuses: a
 * missing identity, face or photo is a NotFoundError (404), a correction the rules refuse is a
 * RejectedError (409). Anything else a service method throws is a bug.
 */
import { FacepipeError } from '../core/errors.ts';

export type Kind = 'identity' | 'face' | 'photo' | 'correction';

export class NotFoundError extends FacepipeError {
  constructor(
    readonly kind: Kind,
    readonly id: string,
  ) {
    super(`${kind.toUpperCase()}_NOT_FOUND`, `no ${kind} with id ${JSON.stringify(id)}`);
  }
}

/**
 * CORRECTION_REJECTED (against a stored correction), SAME_IDENTITY, FACE_DROPPED, CANNOT_UNDO (a
 * correction already undone, or an undo itself).
 */
export class RejectedError extends FacepipeError {
  constructor(
    code: 'CORRECTION_REJECTED' | 'SAME_IDENTITY' | 'FACE_DROPPED' | 'CANNOT_UNDO',
    message: string,
  ) {
    super(code, message);
  }
}
