/* placeholder, filled in by the owning change */
