from api.serve import main
from stack.process import exit_for_real

exit_for_real(main())
